"""The training loop: act, step the environment, store, learn; per-episode returns and evaluations."""

from array import array

from .backend import FLOAT_BITS
from .envs import make
from .rng import Rng
from .td3 import TD3, Diverged


def evaluate(agent, episodes, seed, episode_steps=0, env=None):
    """Mean return of the deterministic policy over ``episodes`` episodes from Rng(seed, 1) on
    ``env`` (default: a new environment of the agent's config). An episode ends after
    ``episode_steps`` steps (0: the environment's) or when the environment terminates it."""
    rng = Rng(seed, 1)
    if env is None:
        env = make(agent.config.env)
    steps = episode_steps or env.episode_steps
    policy = agent.policy
    total = 0.0
    for _ in range(episodes):
        obs = env.reset(rng)
        for _ in range(steps):
            obs, r, terminated = env.step(policy(obs))
            total += r
            if terminated:
                break
    return total / episodes


class Trainer:
    """One training run, advanced one environment step at a time (so a caller can interleave I/O).

    ``env``: the environment to learn (default: the config's built-in ``env``); ``eval_env``: the
    one evaluations run on (default: a second built-in one, made at the first evaluation, or ``env``
    itself when ``env`` is given:
    an evaluation then interrupts the episode in progress, which goes on from its saved state when
    the environment has ``get_state``/``set_state`` and restarts otherwise).
    """

    def __init__(self, config, env=None, eval_env=None):
        c = config
        self.config = c
        check = None  # an environment from the user is checked, field by field and step by step
        if env is None:
            env = make(c.env)
        else:
            from .envcheck import check
            check(env)
            if eval_env is None:
                eval_env = env
        if eval_env is not None and eval_env is not env:
            if check is None:
                from .envcheck import check
            check(eval_env)
            if (eval_env.obs_dim, eval_env.act_dim) != (env.obs_dim, env.act_dim):
                raise ValueError("eval_env has other dimensions than env")
        # Every attribute before the learner's buffers (see TD3: the dict grows on a whole heap).
        self._check = check
        self.env = env
        self.eval_env = eval_env
        self.episode_length = c.episode_steps or env.episode_steps
        self.steps = 0
        self.episodes = 0
        self.episode_return = 0.0
        self._episode_steps = 0
        self._train_from = c.learning_starts  # later after a resume without the replay buffer
        self.checkpoint = None  # checkpoint.Checkpointer when checkpointing or resumed
        self.obs = None
        # The pre-step observation, preallocated (the environment may update its array in place).
        self._prev = array("d" if FLOAT_BITS == 64 else "f", bytes(FLOAT_BITS // 8 * env.obs_dim))
        self.rng = Rng(c.seed, 0)
        self.agent = TD3(c, self.rng, env)
        self.obs = env.reset(self.rng)
        if check is not None:
            check(env, (self.obs, 0.0, False), "reset()")
        if c.checkpoint_every:
            from .checkpoint import Checkpointer
            self.checkpoint = Checkpointer(self)

    def step(self):
        """One environment step and, past the warm-up, TD3 updates (one every ``train_every``
        steps, or ``episode_updates`` after each episode).

        Returns the episode's return when this step ended an episode, else None.
        """
        c = self.config
        agent, env, rng, prev = self.agent, self.env, self.rng, self._prev
        obs = self.obs
        a = agent.act(obs, rng, self.steps)
        for j in range(len(prev)):
            prev[j] = obs[j]
        result = env.step(a)
        if self._check is not None:  # the first step of a user's environment
            self._check(env, result)
            self._check = None
        obs, r, terminated = result
        self.obs = obs
        self._episode_steps += 1
        last = terminated or self._episode_steps == self.episode_length
        try:
            agent.store(prev, a, r, obs, 1.0 if terminated else 0.0, last)
            self.episode_return += r
            finished = None
            train = self.steps >= self._train_from
            if last:
                finished = self.episode_return
                self.episodes += 1
                if c.episode_updates and train:  # between episodes: the plant waits, not the loop
                    for _ in range(c.episode_updates):
                        agent.train_step(rng)
                self._restart()
            if (not c.episode_updates and train
                    and (self.steps - c.learning_starts) % c.train_every == 0):
                agent.train_step(rng)
        except Diverged as e:  # a NaN or an infinity: back to the newest checkpoint, this step
            from .guard import recover  # abandoned (guard.py)
            recover(self, e)
            return None
        self.steps += 1
        if c.checkpoint_every and self.steps % c.checkpoint_every == 0:
            self.checkpoint.save()
        return finished

    def _restart(self):
        self.obs = self.env.reset(self.rng)
        self.episode_return = 0.0
        self._episode_steps = 0

    def evaluate(self):
        c = self.config
        if self.eval_env is None:  # made at the first evaluation: none while the learner is built
            self.eval_env = make(c.env)
        env = self.eval_env
        shared = env is self.env
        state = env.get_state() if shared and hasattr(env, "get_state") else None
        mean = evaluate(self.agent, c.eval_episodes, c.seed, c.episode_steps, env)
        if state is not None:
            self.obs = env.set_state(state)
        elif shared:  # the episode in progress is lost: start another one
            self.agent.buffer.cut()
            self._restart()
        return mean


def train(config, on_episode=None, on_eval=None, trainer=None):
    """Train from scratch with ``config`` (or go on with ``trainer``, e.g. a resumed one, up to the
    config's ``total_steps``); returns a dict of episode and evaluation returns.

    ``on_episode(episode, step, episode_return)`` and ``on_eval(step, mean_return)`` are called as
    the run goes; returning True from either stops the run early.
    """
    c = config
    trainer = trainer if trainer is not None else Trainer(c)
    episode_returns = []
    eval_returns = []
    stop = False
    while trainer.steps < c.total_steps and not stop:
        finished = trainer.step()
        if finished is not None:
            episode_returns.append(finished)
            if on_episode is not None:
                stop = bool(on_episode(trainer.episodes, trainer.steps, finished))
        if c.eval_every and trainer.steps % c.eval_every == 0:
            eval_returns.append((trainer.steps, trainer.evaluate()))
            if on_eval is not None:
                stop = bool(on_eval(*eval_returns[-1])) or stop
    if not eval_returns or eval_returns[-1][0] != trainer.steps:
        eval_returns.append((trainer.steps, trainer.evaluate()))
    return {
        "steps": trainer.steps,
        "episode_returns": episode_returns,
        "eval_returns": eval_returns,
        "final_eval_return": eval_returns[-1][1],
        "agent": trainer.agent,
    }
