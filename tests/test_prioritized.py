"""Prioritized replay inside TD3: priorities, importance weights, device against mirror."""

import numpy as np
import pytest

from devicerun import compare_whole_run
from microrl_host.mirror.config import TD3Config as MirrorConfig
from microrl_host.mirror.rng import Rng as MirrorRng
from microrl_host.mirror.td3 import TD3 as MirrorTD3

SMALL = dict(actor_hidden=[8, 8], critic_hidden=[8, 8], batch_size=8, buffer_capacity=300,
             learning_starts=50, policy_delay=2)


def _filled_agent(replay, steps=120, episode_steps=40):
    config = MirrorConfig(prioritized=True, replay=replay, **SMALL)
    agent = MirrorTD3(config, MirrorRng(1))
    gen = np.random.default_rng(0)
    for t in range(steps):
        th = gen.uniform(-np.pi, np.pi)
        obs = [np.cos(th), np.sin(th), gen.uniform(-8, 8)]
        agent.store(obs, gen.uniform(-1, 1), -gen.uniform(0, 16), obs, 0.0,
                    (t + 1) % episode_steps == 0)
    return agent


@pytest.mark.parametrize("replay", ["float", "compressed"])
def test_new_transitions_get_the_largest_priority_and_only_whole_ones_count(replay):
    agent = _filled_agent(replay)
    leaves = agent.per.tree.nodes[:agent.buffer.capacity]
    mask = agent.buffer.sampleable_mask()
    assert np.all(leaves[:120][mask] == 1.0)
    assert np.all(leaves[:120][~mask] == 0.0)
    assert np.all(leaves[120:] == 0.0)
    if replay == "compressed":
        assert list(np.flatnonzero(~mask)) == [39, 79, 119]
    agent.per.max_priority = 3.0
    agent.train_step(MirrorRng(5))
    changed = np.flatnonzero(mask & (leaves[:120] != 1.0))
    assert 0 < changed.size <= 8  # the sampled slots got TD-error priorities
    assert np.all(leaves[:120][~mask] == 0.0)  # and no partial slot was drawn


def test_importance_weights_and_priorities_follow_the_formulas():
    agent = _filled_agent("float")
    leaves = agent.per.tree.nodes[:300]
    for slot, p in enumerate(np.linspace(0.5, 2.0, 120)):
        agent.per.tree.update(slot, p)
    agent.per.sample(MirrorRng(9), 8)
    slots = agent.per.slots.copy()
    p = leaves[slots]
    np.testing.assert_allclose(agent.per.weights[:, 0], (p.min() / p) ** agent.config.per_beta,
                               rtol=1e-15)
    assert agent.per.weights.max() == 1.0
    agent.update_critic(MirrorRng(9))  # the same draws: the same slots
    td = np.abs(agent._dq[0, :, 0] / agent.per.weights[:, 0]) * 4.0  # dq = 2 w (Q1 - y) / 8
    expect = (td + agent.config.per_eps) ** agent.config.per_alpha
    last = {s: e for s, e in zip(slots, expect)}  # a repeated slot keeps its last priority
    np.testing.assert_allclose([leaves[s] for s in last], list(last.values()), rtol=1e-9)


RUN = dict(actor_hidden=[8, 8], critic_hidden=[8, 8], batch_size=8, buffer_capacity=1500,
           learning_starts=400, total_steps=2000, eval_every=1000, eval_episodes=2, seed=3)


@pytest.mark.parametrize("extra", [dict(prioritized=True),
                                   dict(prioritized=True, replay="compressed", per_k=2),
                                   dict(prioritized=True, micro_batch=3)])
def test_whole_prioritized_run_micropython_equals_mirror(extra):
    out, mirror, _ = compare_whole_run(dict(RUN, **extra), episodes=10)
    assert out["max_priority"] > 1.0  # TD errors raised priorities above the initial 1
    assert abs(out["max_priority"] - mirror["agent"].per.max_priority) < 1e-6
