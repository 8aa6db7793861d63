from typing import Any

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

    th: float
    thdot: float
    obs: Any  # array of 3 floats, updated in place by reset, set_state and step

    def __init__(self) -> None: ...
    def reset(self, rng: Rng) -> Any: ...
    def set_state(self, th: float, thdot: float) -> Any: ...
    def step(self, torque_nm: float) -> float:
        """Advance DT_S; the reward of the pre-step state."""
