"""The training loop of docs/ALGORITHM.md and the deterministic evaluation (with the compiled
kernels, the pendulum episodes of an evaluation advance in one call per step, fused_steps.py)."""

import time

import numpy as np

from microrl_host.mirror import fused_steps, pendulum
from microrl_host.mirror.envs import factory
from microrl_host.mirror.pendulum import DT_S, MAX_SPEED_RAD_PER_S, MAX_TORQUE_NM, Pendulum
from microrl_host.mirror.rng import Rng
from microrl_host.mirror.td3 import TD3

SOLVED_RETURN = -200.0  # the evaluation return counted as "swings up and balances"


def evaluate(agent_or_actor, episodes, seed, episode_steps=0, make_env=None):
    """Mean return of `episodes` episodes with the deterministic action actor(obs).

    Uses its own generator Rng(seed, 1), so every evaluation starts from the same states and the
    training sequence is untouched. The episodes are independent, so they run side by side: the
    starts are drawn in episode order (exactly the draws of sequential episodes, as long as an
    environment draws only in reset) and the actor sees all of them in one batch per step. An
    episode ends after `episode_steps` (0: the environment's) or when its environment terminates.
    `make_env`: a function returning a new environment (default: the pendulum)."""
    actor = getattr(agent_or_actor, "actor", agent_or_actor)
    config = getattr(agent_or_actor, "config", None)
    make_env = make_env or factory(config.env if config is not None else "pendulum")
    eval_rng = Rng(seed, 1)
    envs = [make_env() for _ in range(episodes)]
    obs = np.zeros((episodes, envs[0].obs_dim), actor.dtype)
    for i, env in enumerate(envs):
        obs[i] = env.reset(eval_rng)
    chunk = actor.max_batch
    if (getattr(actor, "_fused", False) and episodes <= chunk
            and all(type(env) is Pendulum for env in envs)):
        return _evaluate_pendulums(actor, envs, obs, episode_steps or envs[0].episode_steps)
    returns = [0.0] * episodes
    alive = list(range(episodes))  # episodes still running, in order
    for _ in range(episode_steps or envs[0].episode_steps):
        rows = obs if len(alive) == episodes else obs[alive]
        ended = False
        for start in range(0, len(alive), chunk):
            stop = min(start + chunk, len(alive))
            actions = actor.forward(rows[start:stop], stop - start)
            for k, i in enumerate(alive[start:stop]):
                o, r, terminated = envs[i].step(actions[k])
                obs[i] = o
                returns[i] += r
                if terminated:
                    envs[i] = None
                    ended = True
        if ended:
            alive = [i for i in alive if envs[i] is not None]
            if not alive:
                break
    return sum(returns) / episodes


def _evaluate_pendulums(actor, envs, obs, steps):
    """evaluate's loop for pendulums with the compiled kernels: every step is the actor on all
    rows and one fused_steps.pendulum_steps over them, the same arithmetic as Pendulum.step."""
    state = np.array([env.get_state() for env in envs])
    returns = np.zeros(len(envs))
    constants = np.array([MAX_TORQUE_NM, MAX_SPEED_RAD_PER_S, DT_S, pendulum.GRAVITY_TERM,
                          pendulum.TORQUE_TERM])
    n = len(envs)
    x_in = actor.inputs(n)
    np.copyto(x_in, obs)
    for _ in range(steps):
        fused_steps.pendulum_steps(state, actor.forward(None, n), x_in, returns, constants)
    return sum(returns.tolist()) / n


def train(config, dtype=np.float64, on_episode=None, on_eval=None, products="float",
          make_env=None):
    """Train TD3 on `make_env()` (default: the config's built-in environment) for
    `config.total_steps` env steps.

    `on_episode(episode_index, episode_return)` and `on_eval(step, mean_return)` are called as they
    happen. Returns a dict: episode_returns, eval_returns ([step, mean_return] pairs),
    final_eval_return, steps, wall_s (including evaluations), first_step_at_minus_200, agent."""
    start_s = time.perf_counter()
    make_env = make_env or factory(config.env)
    rng = Rng(config.seed, 0)
    env = make_env()
    agent = TD3(config, rng, dtype, products, env)
    obs = env.reset(rng)
    prev = np.zeros(env.obs_dim)  # the pre-step observation (an environment may reuse its array)
    length = config.episode_steps or env.episode_steps
    updates = config.episode_updates
    ep_return = 0.0
    ep_step = 0
    episode_returns = []
    eval_returns = []
    add = agent.store
    for step in range(config.total_steps):
        a = agent.act(obs, rng, step)
        prev[:] = obs
        obs, r, terminated = env.step(a)
        ep_step += 1
        last = terminated or ep_step == length
        add(prev, a, r, obs, 1.0 if terminated else 0.0, last)
        ep_return += r
        learning = step >= config.learning_starts
        if last:
            episode_returns.append(ep_return)
            if on_episode is not None:
                on_episode(len(episode_returns) - 1, ep_return)
            if updates and learning:
                for _ in range(updates):
                    agent.train_step(rng)
            obs = env.reset(rng)
            ep_return = 0.0
            ep_step = 0
        if not updates and learning and (step - config.learning_starts) % config.train_every == 0:
            agent.train_step(rng)
        if config.eval_every and (step + 1) % config.eval_every == 0:
            mean_return = evaluate(agent, config.eval_episodes, config.seed, config.episode_steps,
                                   make_env)
            eval_returns.append([step + 1, mean_return])
            if on_eval is not None:
                on_eval(step + 1, mean_return)
    if not eval_returns or eval_returns[-1][0] != config.total_steps:  # always end evaluated
        eval_returns.append([config.total_steps, evaluate(agent, config.eval_episodes, config.seed,
                                                          config.episode_steps, make_env)])
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
