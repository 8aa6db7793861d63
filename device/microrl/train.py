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


class Trainer:
    """One training run, advanced one environment step at a time (so a caller can interleave I/O)."""

    def __init__(self, config):
        c = config
        self.config = c
        self.rng = Rng(c.seed, 0)
        self.agent = TD3(c, self.rng)
        self.env = Pendulum()
        self.obs = self.env.reset(self.rng)
        self._prev = Pendulum().obs  # keeps the pre-step observation, preallocated
        self.steps = 0
        self.episodes = 0
        self.episode_return = 0.0
        self._episode_steps = 0
        self._train_from = c.learning_starts  # later after a resume without the replay buffer
        self.checkpoint = None  # checkpoint.Checkpointer when checkpointing or resumed
        if c.checkpoint_every:
            from .checkpoint import Checkpointer
            self.checkpoint = Checkpointer(self)

    def step(self):
        """One environment step and, past the warm-up, one TD3 update.

        Returns the episode's return when this step ended an episode, else None.
        """
        c = self.config
        agent, env, obs, prev = self.agent, self.env, self.obs, self._prev
        a = agent.act(obs, self.rng, self.steps)
        for j in range(OBS_DIM):
            prev[j] = obs[j]
        r = env.step(a * MAX_TORQUE_NM)
        self._episode_steps += 1
        last = self._episode_steps == c.episode_steps
        agent.store(prev, a, r, obs, 0.0, last)
        self.episode_return += r
        finished = None
        if last:
            finished = self.episode_return
            self.episodes += 1
            self.obs = env.reset(self.rng)
            self.episode_return = 0.0
            self._episode_steps = 0
        if self.steps >= self._train_from and (self.steps - c.learning_starts) % c.train_every == 0:
            agent.train_step(self.rng)
        self.steps += 1
        if c.checkpoint_every and self.steps % c.checkpoint_every == 0:
            self.checkpoint.save()
        return finished

    def evaluate(self):
        c = self.config
        return evaluate(self.agent, c.eval_episodes, c.seed, c.episode_steps)


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
