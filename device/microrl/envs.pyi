from typing import Any, Protocol, Sequence

from .rng import Rng

NAMES: tuple[str, ...]

class Environment(Protocol):
    """What ``Trainer(config, env=...)`` learns (docs/ENVIRONMENTS.md). Optional: ``get_state()``
    and ``set_state(state)``, for checkpoints that resume inside an episode."""

    obs_dim: int
    act_dim: int
    obs_low: Sequence[float]  # the bounds compressed replay quantises observations with
    obs_high: Sequence[float]
    reward_range: tuple[float, float]  # the bounds compressed replay quantises rewards with
    episode_steps: int  # truncation length (a config's episode_steps > 0 overrides it)

    def reset(self, rng: Rng) -> Sequence[float]:
        """The first observation: obs_dim floats, an array the environment may reuse in place."""
    def step(self, action: Sequence[float]) -> tuple[Sequence[float], float, bool]:
        """``act_dim`` floats in [-1, 1] -> (observation, reward, terminated)."""

def make(name: str) -> Any:
    """A new built-in environment: "pendulum" or "servo"."""
