"""TD3 mirror against the PyTorch reference update (tests/td3_reference.py), and `act`."""

import copy

import numpy as np
import pytest

from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.pendulum import MAX_TORQUE_NM, Pendulum
from microrl_host.mirror.rng import Rng
from microrl_host.mirror.td3 import TD3
from td3_reference import NETWORKS, reference_update


def _transitions(count, seed):
    """Pendulum transitions under random actions, rounded to float32 as the buffer stores them."""
    rng = Rng(seed, 2)
    env = Pendulum()
    obs = env.reset(rng)
    rows = []
    for i in range(count):
        a = 2.0 * rng.uniform() - 1.0
        next_obs, r, _ = env.step([a])
        rows.append(np.concatenate([obs, [a, r], next_obs, [float(i % 7 == 0)]]))  # some done=1
        obs = env.reset(rng) if (i + 1) % 200 == 0 else next_obs
    return np.array(rows, np.float32).astype(np.float64)


def _batch(rows, idx, noise):
    b = rows[idx]
    return {"obs": b[:, 0:3], "action": b[:, 3:4], "reward": b[:, 4], "next_obs": b[:, 5:8],
            "done": b[:, 8], "noise": noise}


@pytest.mark.parametrize("policy_delay, steps", [(1, 1), (2, 2), (2, 3)])
def test_train_steps_match_torch_reference(policy_delay, steps):
    config = TD3Config(policy_delay=policy_delay, learning_starts=0, tau=0.05, seed=3)
    rng = Rng(config.seed, 0)
    agent = TD3(config, rng)
    rows = _transitions(300, seed=1)
    for row in rows:
        agent.buffer.add(row[0:3], row[3], row[4], row[5:8], row[8])
    weights = {name: agent.networks[name].get_weights() for name in NETWORKS}
    # The draws train_step will make: B indices, then B normals, per critic update.
    ahead = copy.deepcopy(rng)
    batches = []
    for _ in range(steps):
        idx = ahead.below_array(config.batch_size, len(rows))
        batches.append(_batch(rows, idx, ahead.normal_array(config.batch_size)))
    for _ in range(steps):
        agent.train_step(rng)
    assert rng.state == ahead.state
    expected = reference_update(config, weights, batches)
    worst = 0.0
    for name in NETWORKS:
        for got, want in zip(agent.networks[name].get_weights(), expected[name]):
            worst = max(worst, float(np.max(np.abs(got - want))))
    assert worst < 1e-5, worst
    moved = {name: max(float(np.max(np.abs(a - b))) for a, b in
                       zip(agent.networks[name].get_weights(), weights[name])) for name in NETWORKS}
    assert all(moved[name] > 1e-5 for name in NETWORKS), moved  # every network was updated
    assert agent.critic_updates == steps


def test_float32_agent_stays_close_to_reference():
    config = TD3Config(policy_delay=1, learning_starts=0, seed=5)
    rng = Rng(config.seed, 0)
    agent = TD3(config, rng, np.float32)
    rows = _transitions(150, seed=2)
    for row in rows:
        agent.buffer.add(row[0:3], row[3], row[4], row[5:8], row[8])
    weights = {name: [w.astype(np.float64) for w in agent.networks[name].get_weights()]
               for name in NETWORKS}
    ahead = copy.deepcopy(rng)
    idx = ahead.below_array(config.batch_size, len(rows))
    batch = _batch(rows, idx, ahead.normal_array(config.batch_size))
    agent.train_step(rng)
    expected = reference_update(config, weights, [batch])
    for name in NETWORKS:
        for got, want in zip(agent.networks[name].get_weights(), expected[name]):
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


def test_construction_draw_order_and_target_copies():
    config = TD3Config(actor_hidden=(8,), critic_hidden=(6, 5))
    agent = TD3(config, Rng(0, 0))
    from microrl_host.mirror.mlp import MLP
    rng = Rng(0, 0)
    actor = MLP((3, 8, 1), "tanh", 1, rng)
    critic1 = MLP((4, 6, 5, 1), "linear", 1, rng)
    critic2 = MLP((4, 6, 5, 1), "linear", 1, rng)
    np.testing.assert_array_equal(agent.actor.params, actor.params)
    np.testing.assert_array_equal(agent.critic1.params, critic1.params)
    np.testing.assert_array_equal(agent.critic2.params, critic2.params)
    for name in ("actor", "critic1", "critic2"):
        np.testing.assert_array_equal(agent.networks[name + "_target"].params,
                                      agent.networks[name].params)


def test_act_is_uniform_before_learning_starts_then_actor_plus_noise():
    config = TD3Config(learning_starts=10, exploration_noise=0.1)
    agent = TD3(config, Rng(0))
    rng, ahead = Rng(6), Rng(6)
    obs = np.array([0.6, 0.8, -1.5])
    assert agent.act(obs, rng, 9) == 2.0 * ahead.uniform() - 1.0
    a = agent.act(obs, rng, 10)
    mean = float(agent.actor.forward(obs.reshape(1, 3), 1)[0, 0])
    assert a == min(max(mean + 0.1 * ahead.normal(), -1.0), 1.0)
    assert rng.state == ahead.state
    agent.actor.biases[-1][:] = 50.0  # saturate tanh at +1: the noisy action is clipped
    assert all(agent.act(obs, rng, 10) <= 1.0 for _ in range(20))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stacked_critic_passes_give_the_bits_of_the_sequential_ones(dtype):
    """The four critics' forward passes as one stack (TwinPairs) against the two twins run one
    after the other, the update's straightforward path: the same parameters, bit for bit."""
    config = TD3Config(learning_starts=0, seed=5)
    agents = []
    for stacked in (True, False):
        rng = Rng(config.seed, 0)
        agent = TD3(config, rng, dtype)
        if not stacked:
            agent.critic_pairs = None
        for row in _transitions(400, seed=2):
            agent.buffer.add(row[0:3], row[3], row[4], row[5:8], row[8])
        for _ in range(6):
            agent.train_step(rng)
        agents.append(agent)
    fast, plain = agents
    assert fast.critic_pairs is not None
    for name in ("params", "target_params", "grads"):
        assert np.array_equal(getattr(fast, name), getattr(plain, name)), name
    assert np.array_equal(fast.critic_optimizer.v, plain.critic_optimizer.v)
    assert not np.array_equal(fast.target_params, fast.params)
