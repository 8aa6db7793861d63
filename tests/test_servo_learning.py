"""TD3 learns the servo on the mirror: 3 of 3 seeds reach and hold their targets.

"Reach and hold" is a mean evaluation return of at least REACH_AND_HOLD_RETURN over 10
deterministic episodes, with every episode's error within HOLD_RAD over its last HOLD_STEPS steps.
For scale: zero duty scores -48, a tuned PD controller with gravity feed-forward -1.8."""

import numpy as np
import pytest

from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.rng import Rng
from microrl_host.mirror.servo import SOLVED_RETURN, Servo
from microrl_host.mirror.train import train

CONFIG = dict(env="servo", actor_hidden=(64, 64), critic_hidden=(64, 64), batch_size=64,
              buffer_capacity=20000, total_steps=6000, learning_starts=1000, eval_every=0,
              eval_episodes=10)
REACH_AND_HOLD_RETURN = SOLVED_RETURN
HOLD_RAD = 0.1
HOLD_STEPS = 20


def final_errors(actor, episodes, seed):
    """The largest |error| over the last HOLD_STEPS steps of each evaluation episode (the
    evaluation's starts: Rng(seed, 1), drawn in episode order)."""
    rng = Rng(seed, 1)
    env = Servo()
    worst = []
    for _ in range(episodes):
        obs = env.reset(rng)
        errors = []
        for _ in range(env.episode_steps):
            obs, _, _ = env.step(actor.forward(obs, 1)[0])
            errors.append(abs(env.error()))
        worst.append(max(errors[-HOLD_STEPS:]))
    return worst


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reaches_and_holds_the_target(seed):
    config = TD3Config(**CONFIG, seed=seed)
    result = train(config, np.float64)
    errors = final_errors(result["agent"].actor, config.eval_episodes, seed)
    print("seed %d: evaluation return %.2f after %d steps in %.1f s, final errors at most %.3f rad"
          % (seed, result["final_eval_return"], config.total_steps, result["wall_s"], max(errors)))
    assert REACH_AND_HOLD_RETURN == -3.0
    assert result["final_eval_return"] >= REACH_AND_HOLD_RETURN
    assert len(errors) == 10 and max(errors) <= HOLD_RAD
