from typing import Optional, Sequence

from .config import TD3Config
from .envs import Environment
from .mlp import MLP
from .qactor import QActor
from .rng import Rng

class TD3:
    config: TD3Config
    rows: int
    actor: MLP
    critic1: MLP
    critic2: MLP
    actor_target: MLP
    critic1_target: MLP
    critic2_target: MLP
    critic_updates: int
    qactor: Optional[QActor]

    def __init__(self, config: TD3Config, rng: Rng, env: Optional[Environment] = None) -> None: ...
    def policy(self, obs: Sequence[float]) -> list[float]:
        """The deterministic action (act_dim floats in [-1, 1]; a list the next call reuses)."""
    def act(self, obs: Sequence[float], rng: Rng, step: int) -> list[float]: ...
    def store(self, obs: Sequence[float], action: Sequence[float], reward: float,
              next_obs: Sequence[float], done: float, episode_end: bool = False) -> None: ...
    def train_step(self, rng: Rng) -> None: ...
    def update_critic(self, rng: Rng) -> None: ...
    def update_actor(self) -> None: ...
    def update_targets(self) -> None: ...
