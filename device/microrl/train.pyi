from typing import Callable, Optional, TypedDict

from .checkpoint import Checkpointer
from .config import TD3Config
from .pendulum import Pendulum
from .rng import Rng
from .td3 import TD3

class TrainResult(TypedDict):
    steps: int
    episode_returns: list[float]
    eval_returns: list[tuple[int, float]]  # (step, mean return of the deterministic policy)
    final_eval_return: float
    agent: TD3

def evaluate(agent: TD3, episodes: int, seed: int, episode_steps: int = 200) -> float: ...

class Trainer:
    """One training run, advanced one environment step at a time."""

    config: TD3Config
    rng: Rng
    agent: TD3
    env: Pendulum
    obs: object  # the current observation [cos th, sin th, thdot]
    steps: int
    episodes: int
    episode_return: float
    checkpoint: Optional[Checkpointer]  # when checkpointing or resumed

    def __init__(self, config: TD3Config) -> None: ...
    def step(self) -> Optional[float]:
        """One environment step and, past the warm-up, one TD3 update; the episode's return when
        this step ended an episode, else None."""
    def evaluate(self) -> float: ...

def train(config: TD3Config,
          on_episode: Optional[Callable[[int, int, float], Optional[bool]]] = None,
          on_eval: Optional[Callable[[int, float], Optional[bool]]] = None,
          trainer: Optional[Trainer] = None) -> TrainResult:
    """Train from scratch (or go on with ``trainer``, e.g. a resumed one, up to total_steps);
    ``on_episode(episode, step, return)`` and ``on_eval(step, mean_return)`` are called as the run
    goes, and returning True from either stops it early."""
