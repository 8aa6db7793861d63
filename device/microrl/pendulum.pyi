from typing import Any, Sequence

from .rng import Rng

GRAVITY_MPS2: float
MASS_KG: float
LENGTH_M: float
DT_S: float
MAX_SPEED_RADPS: float
MAX_TORQUE_NM: float
EPISODE_STEPS: int
OBS_DIM: int
ACT_DIM: int

def angle_normalize(x: float) -> float: ...

class Pendulum:
    """Swing-up: observation [cos th, sin th, thdot], reward -(th^2 + 0.1 thdot^2 + 0.001 u^2)."""

    obs_dim: int
    act_dim: int
    obs_low: tuple[float, float, float]
    obs_high: tuple[float, float, float]
    reward_range: tuple[float, float]
    episode_steps: int
    th: float
    thdot: float
    obs: Any  # array of 3 floats, updated in place by reset, set_state, step and advance

    def __init__(self) -> None: ...
    def reset(self, rng: Rng) -> Any: ...
    def get_state(self) -> tuple[float, float]: ...
    def set_state(self, state: Sequence[float]) -> Any:
        """Set (th, thdot) exactly; returns the observation."""
    def step(self, action: Sequence[float]) -> tuple[Any, float, bool]:
        """The environment protocol's step: torque action[0] * MAX_TORQUE_NM; (obs, reward, False)."""
    def advance(self, torque_nm: float) -> float:
        """Advance DT_S; the reward of the pre-step state."""
