"""The training loop of docs/ALGORITHM.md and the deterministic evaluation."""

import time

import numpy as np

from microrl_host.mirror.pendulum import MAX_TORQUE_NM, Pendulum
from microrl_host.mirror.rng import Rng
from microrl_host.mirror.td3 import TD3

SOLVED_RETURN = -200.0  # the evaluation return counted as "swings up and balances"


def evaluate(agent_or_actor, episodes, seed, episode_steps=200):
    """Mean return of `episodes` episodes with the deterministic action actor(obs).

    Uses its own generator Rng(seed, 1), so every evaluation starts from the same states and the
    training sequence is untouched. The episodes are independent, so they run side by side: the
    starts are drawn in episode order (exactly the draws of sequential episodes) and the actor sees
    all of them in one batch per step."""
    actor = getattr(agent_or_actor, "actor", agent_or_actor)
    eval_rng = Rng(seed, 1)
    envs = [Pendulum() for _ in range(episodes)]
    for env in envs:
        env.reset(eval_rng)
    chunk = actor.max_batch
    obs = np.zeros((episodes, 3), actor.dtype)
    returns = [0.0] * episodes
    for _ in range(episode_steps):
        for i, env in enumerate(envs):
            obs[i] = env.observation()
        for start in range(0, episodes, chunk):
            stop = min(start + chunk, episodes)
            actions = actor.forward(obs[start:stop], stop - start)[:, 0].tolist()
            for i, a in enumerate(actions, start):
                returns[i] += envs[i].advance(a * MAX_TORQUE_NM)
    return sum(returns) / episodes


def train(config, dtype=np.float64, on_episode=None, on_eval=None, products="float"):
    """Train TD3 on the pendulum for `config.total_steps` env steps.

    `on_episode(episode_index, episode_return)` and `on_eval(step, mean_return)` are called as they
    happen. Returns a dict: episode_returns, eval_returns ([step, mean_return] pairs),
    final_eval_return, steps, wall_s (including evaluations), first_step_at_minus_200, agent."""
    start_s = time.perf_counter()
    rng = Rng(config.seed, 0)
    agent = TD3(config, rng, dtype, products)
    env = Pendulum()
    obs = env.reset(rng)
    ep_return = 0.0
    ep_step = 0
    episode_returns = []
    eval_returns = []
    add = agent.store
    for step in range(config.total_steps):
        a = agent.act(obs, rng, step)
        next_obs, r = env.step(a * MAX_TORQUE_NM)
        ep_step += 1
        last = ep_step == config.episode_steps
        add(obs, a, r, next_obs, 0.0, last)
        ep_return += r
        obs = next_obs
        if last:
            episode_returns.append(ep_return)
            if on_episode is not None:
                on_episode(len(episode_returns) - 1, ep_return)
            obs = env.reset(rng)
            ep_return = 0.0
            ep_step = 0
        if step >= config.learning_starts and (step - config.learning_starts) % config.train_every == 0:
            agent.train_step(rng)
        if config.eval_every and (step + 1) % config.eval_every == 0:
            mean_return = evaluate(agent, config.eval_episodes, config.seed, config.episode_steps)
            eval_returns.append([step + 1, mean_return])
            if on_eval is not None:
                on_eval(step + 1, mean_return)
    if not eval_returns or eval_returns[-1][0] != config.total_steps:  # always end evaluated
        eval_returns.append([config.total_steps, evaluate(agent, config.eval_episodes, config.seed,
                                                          config.episode_steps)])
    first = next((s for s, ret in eval_returns if ret >= SOLVED_RETURN), None)
    return {
        "episode_returns": episode_returns,
        "eval_returns": eval_returns,
        "final_eval_return": eval_returns[-1][1] if eval_returns else None,
        "steps": config.total_steps,
        "wall_s": time.perf_counter() - start_s,
        "first_step_at_minus_200": first,
        "agent": agent,
    }
