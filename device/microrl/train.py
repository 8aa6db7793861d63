"""The training loop: act, step the pendulum, store, learn; per-episode returns and evaluations."""

from .pendulum import MAX_TORQUE_NM, OBS_DIM, Pendulum
from .rng import Rng
from .td3 import TD3


def evaluate(agent, episodes, seed, episode_steps=200):
    """Mean return of the deterministic policy over ``episodes`` episodes from Rng(seed, 1)."""
    rng = Rng(seed, 1)
    env = Pendulum()
    total = 0.0
    for _ in range(episodes):
        obs = env.reset(rng)
        for _ in range(episode_steps):
            total += env.step(agent.policy(obs) * MAX_TORQUE_NM)
    return total / episodes


def train(config, on_episode=None, on_eval=None, agent=None):
    """Train from scratch with ``config``; returns a dict of episode and evaluation returns.

    ``on_episode(episode, step, episode_return)`` and ``on_eval(step, mean_return)`` are called as
    the run goes; returning True from either stops the run early.
    """
    c = config
    rng = Rng(c.seed, 0)
    if agent is None:
        agent = TD3(c, rng)
    env = Pendulum()
    obs = env.reset(rng)
    prev = Pendulum().obs  # a second observation array to keep the pre-step observation
    episode_returns = []
    eval_returns = []
    ep_return = 0.0
    ep_steps = 0
    stop = False
    for step in range(c.total_steps):
        a = agent.act(obs, rng, step)
        for j in range(OBS_DIM):
            prev[j] = obs[j]
        r = env.step(a * MAX_TORQUE_NM)
        agent.buffer.add(prev, a, r, obs, 0.0)
        ep_return += r
        ep_steps += 1
        if ep_steps == c.episode_steps:
            episode_returns.append(ep_return)
            if on_episode is not None:
                stop = on_episode(len(episode_returns), step + 1, ep_return)
            obs = env.reset(rng)
            ep_return = 0.0
            ep_steps = 0
        if step >= c.learning_starts:
            agent.train_step(rng)
        if c.eval_every and (step + 1) % c.eval_every == 0:
            mean_return = evaluate(agent, c.eval_episodes, c.seed, c.episode_steps)
            eval_returns.append((step + 1, mean_return))
            if on_eval is not None:
                stop = on_eval(step + 1, mean_return) or stop
        if stop:
            break
    if not eval_returns or eval_returns[-1][0] != step + 1:
        eval_returns.append((step + 1, evaluate(agent, c.eval_episodes, c.seed, c.episode_steps)))
    return {
        "steps": step + 1,
        "episode_returns": episode_returns,
        "eval_returns": eval_returns,
        "final_eval_return": eval_returns[-1][1],
        "agent": agent,
    }
