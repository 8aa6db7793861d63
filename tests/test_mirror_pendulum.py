"""The pendulum against gymnasium's Pendulum-v1, step by step within 1e-5."""

import math

import gymnasium
import numpy as np

from microrl_host.mirror.pendulum import MAX_TORQUE_NM, Pendulum, angle_normalize
from microrl_host.mirror.rng import Rng


def test_matches_gymnasium_pendulum_v1_for_1000_steps():
    rng = Rng(123)
    ours = Pendulum()
    theirs = gymnasium.make("Pendulum-v1").unwrapped
    theirs.reset(seed=0)
    clipped = 0
    worst = 0.0
    for step in range(1000):
        if step % 200 == 0:
            obs = ours.reset(rng)
            theirs.state = np.array([ours.th, ours.thdot])
            assert np.allclose(obs, theirs._get_obs(), atol=1e-6)
        torque_nm = 3.0 * (2.0 * rng.uniform() - 1.0)  # [-3, 3): exercises the clip
        clipped += abs(torque_nm) > MAX_TORQUE_NM
        obs, reward, done = ours.step([torque_nm / MAX_TORQUE_NM])  # normalised, may pass +-1
        assert done is False
        gym_obs, gym_reward, terminated, truncated, _ = theirs.step(np.array([torque_nm]))
        assert not terminated and not truncated
        worst = max(worst, float(np.max(np.abs(obs - gym_obs))), abs(reward - gym_reward))
    assert worst < 1e-5
    assert clipped > 200
    assert obs.shape == (3,)


def test_reset_draws_angle_then_speed():
    rng = Rng(9)
    copy = Rng(9)
    env = Pendulum()
    obs = env.reset(rng)
    th = math.pi * (2.0 * copy.uniform() - 1.0)
    thdot = 2.0 * copy.uniform() - 1.0
    assert obs.tolist() == [math.cos(th), math.sin(th), thdot]
    assert rng.state == copy.state


def test_speed_is_clipped_and_angle_normalize_wraps():
    env = Pendulum()
    env.th, env.thdot = math.pi / 2, 7.99
    for _ in range(20):
        obs, _, _ = env.step([1.0])
        assert abs(obs[2]) <= 8.0
    assert obs[2] == 8.0
    assert abs(angle_normalize(3 * math.pi) - (-math.pi)) < 1e-12
    assert abs(angle_normalize(-0.5) + 0.5) < 1e-15
