from typing import Callable, Optional, TypedDict

from .checkpoint import Checkpointer
from .config import TD3Config
from .envs import Environment
from .rng import Rng
from .td3 import TD3

class TrainResult(TypedDict):
    steps: int
    episode_returns: list[float]
    eval_returns: list[tuple[int, float]]  # (step, mean return of the deterministic policy)
    final_eval_return: float
    agent: TD3

def evaluate(agent: TD3, episodes: int, seed: int, episode_steps: int = 0,
             env: Optional[Environment] = None) -> float:
    """Mean return of the deterministic policy over ``episodes`` episodes from Rng(seed, 1), each
    ``episode_steps`` long (0: the environment's) or until it terminates."""

class Trainer:
    """One training run, advanced one environment step at a time."""

    config: TD3Config
    rng: Rng
    agent: TD3
    env: Environment
    eval_env: Optional[Environment]  # None until the first evaluation makes a built-in one
    episode_length: int  # episode_steps, or the environment's own
    obs: object  # the current observation (obs_dim floats)
    steps: int
    episodes: int
    episode_return: float
    checkpoint: Optional[Checkpointer]  # when checkpointing or resumed

    def __init__(self, config: TD3Config, env: Optional[Environment] = None,
                 eval_env: Optional[Environment] = None) -> None:
        """``env``: the environment to learn (default: the config's built-in one; one given here
        is checked against the protocol first, ValueError naming what is wrong); ``eval_env``:
        where evaluations run (default: a second built-in one, or ``env`` itself when given)."""
    def step(self) -> Optional[float]:
        """One environment step and, past the warm-up, TD3 updates (every train_every steps, or
        episode_updates after each episode); the episode's return when this step ended an
        episode, else None."""
    def evaluate(self) -> float: ...

def train(config: TD3Config,
          on_episode: Optional[Callable[[int, int, float], Optional[bool]]] = None,
          on_eval: Optional[Callable[[int, float], Optional[bool]]] = None,
          trainer: Optional[Trainer] = None) -> TrainResult:
    """Train from scratch (or go on with ``trainer``, e.g. a resumed one, up to total_steps);
    ``on_episode(episode, step, return)`` and ``on_eval(step, mean_return)`` are called as the run
    goes, and returning True from either stops it early."""
