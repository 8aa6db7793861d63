from typing import Any, Sequence, Tuple

from .rng import Rng

SUPPLY_V: float
STALL_CURRENT_A: float
STALL_TORQUE_NM: float
NO_LOAD_SPEED_RADPS: float
NO_LOAD_CURRENT_A: float
GEAR_RATIO: float
ROTOR_INERTIA_KGM2: float
ARM_MASS_KG: float
ARM_LENGTH_M: float
GRAVITY_MPS2: float
RESISTANCE_OHM: float
BACK_EMF_VSPRAD: float
TORQUE_CONST_NMPA: float
COULOMB_NM: float
VISCOUS_NMSPRAD: float
LOAD_NM: float
INERTIA_KGM2: float
MAX_SPEED_RADPS: float
DT_S: float
SUBSTEPS: int
EPISODE_STEPS: int
OBS_DIM: int
ACT_DIM: int
EFFORT_WEIGHT: float

def angle_normalize(x: float) -> float: ...

class Servo:
    """Reach and hold a target angle: the environment protocol, one duty in, five floats out."""

    obs_dim: int
    act_dim: int
    obs_low: Tuple[float, ...]
    obs_high: Tuple[float, ...]
    reward_range: Tuple[float, float]
    episode_steps: int
    th: float  # shaft angle, rad, in [-pi, pi)
    w: float  # shaft speed, rad/s
    target: float  # target angle of the episode, rad
    obs: Any  # array of 5 floats, updated in place by reset, set_state and step

    def __init__(self) -> None: ...
    def reset(self, rng: Rng) -> Any: ...
    def get_state(self) -> Tuple[float, float, float]: ...
    def set_state(self, state: Sequence[float]) -> Any: ...
    def step(self, action: Sequence[float]) -> Tuple[Any, float, bool]: ...
    def advance(self, duty: float) -> None:
        """Integrate DT_S at ``duty`` in [-1, 1]."""
