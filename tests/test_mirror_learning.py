"""A short seeded run learns: the deterministic evaluation return improves clearly."""

import numpy as np

from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.rng import Rng
from microrl_host.mirror.td3 import TD3
from microrl_host.mirror.train import evaluate, train


def test_short_run_improves_evaluation_return():
    # Small networks and batches learn more slowly per step, hence the larger learning rates.
    config = TD3Config(actor_hidden=(32, 32), critic_hidden=(32, 32), batch_size=32,
                       buffer_capacity=4000, total_steps=4000, learning_starts=500, gamma=0.98,
                       tau=0.01, actor_lr=2e-3, critic_lr=3e-3, eval_every=1000,
                       eval_episodes=5, seed=0)
    untrained = evaluate(TD3(config, Rng(config.seed, 0)), config.eval_episodes, config.seed)
    episodes = []
    result = train(config, np.float64, on_episode=lambda i, ret: episodes.append((i, ret)))
    assert len(result["episode_returns"]) == 20 and len(episodes) == 20
    assert [step for step, _ in result["eval_returns"]] == [1000, 2000, 3000, 4000]
    assert result["final_eval_return"] == result["eval_returns"][-1][1]
    print(f"untrained {untrained:.1f}, trained {result['final_eval_return']:.1f}, "
          f"{result['wall_s']:.2f} s")
    assert result["final_eval_return"] > untrained + 300


def test_training_is_deterministic_and_evaluation_leaves_training_untouched():
    config = TD3Config(actor_hidden=(8,), critic_hidden=(8,), batch_size=8, buffer_capacity=300,
                       total_steps=300, learning_starts=100, eval_every=100, eval_episodes=2,
                       episode_steps=50)
    first = train(config)
    again = train(config)
    assert first["episode_returns"] == again["episode_returns"]
    assert first["eval_returns"] == again["eval_returns"]
    quiet = train(TD3Config(**{**config.to_dict(), "eval_every": 0}))
    assert quiet["episode_returns"] == first["episode_returns"]
    # eval_every = 0: no periodic evaluation, one at the end (as on the device)
    assert quiet["eval_returns"] == [[300, first["eval_returns"][-1][1]]]
    assert np.array_equal(quiet["agent"].params, first["agent"].params)

