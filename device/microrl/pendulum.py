"""Pendulum-v1 (Gymnasium's classic-control swing-up), integrated on the device.

The state is two Python floats; the observation lives in one preallocated array. Episodes are cut
after ``EPISODE_STEPS`` steps by the training loop (truncation, never termination). ``Pendulum``
implements the environment protocol (docs/ENVIRONMENTS.md): ``step(action)`` takes the normalised
action, ``advance(torque_nm)`` the torque.
"""

from array import array
from math import cos, pi, sin

from .backend import FLOAT_BITS, const

GRAVITY_MPS2 = 10.0
MASS_KG = 1.0
LENGTH_M = 1.0
DT_S = 0.05
MAX_SPEED_RADPS = 8.0
MAX_TORQUE_NM = 2.0
EPISODE_STEPS = const(200)
OBS_DIM = const(3)
ACT_DIM = const(1)
_TWO_PI = 2.0 * pi


def angle_normalize(x):
    return ((x + pi) % _TWO_PI) - pi


class Pendulum:
    """Swing-up: observation [cos th, sin th, thdot], reward -(th^2 + 0.1 thdot^2 + 0.001 u^2)."""

    obs_dim = OBS_DIM
    act_dim = ACT_DIM
    obs_low = (-1.0, -1.0, -MAX_SPEED_RADPS)
    obs_high = (1.0, 1.0, MAX_SPEED_RADPS)
    reward_range = (-16.3, 0.0)  # the worst cost is pi^2 + 0.1 * 8^2 + 0.001 * 2^2 = 16.27
    episode_steps = EPISODE_STEPS

    def __init__(self):
        self.th = 0.0
        self.thdot = 0.0
        self.obs = array("d" if FLOAT_BITS == 64 else "f", (0.0, 0.0, 0.0))

    def _observe(self):
        th = self.th
        obs = self.obs
        obs[0] = cos(th)
        obs[1] = sin(th)
        obs[2] = self.thdot
        return obs

    def reset(self, rng):
        """Start at th ~ U[-pi, pi), thdot ~ U[-1, 1); returns the observation array."""
        self.th = pi * (2.0 * rng.uniform() - 1.0)
        self.thdot = 2.0 * rng.uniform() - 1.0
        return self._observe()

    def get_state(self):
        return (self.th, self.thdot)

    def set_state(self, state):
        """Set (th, thdot) exactly; returns the observation array."""
        self.th = state[0]
        self.thdot = state[1]
        return self._observe()

    def step(self, action):
        """The protocol's step: torque = action[0] * MAX_TORQUE_NM; returns (obs, reward, False)."""
        return self.obs, self.advance(action[0] * MAX_TORQUE_NM), False

    def advance(self, torque_nm):
        """Advance dt_s; returns the reward of the pre-step state. ``self.obs`` is updated in place."""
        u = min(max(torque_nm, -MAX_TORQUE_NM), MAX_TORQUE_NM)
        th = self.th
        thdot = self.thdot
        a = angle_normalize(th)
        cost = a * a + 0.1 * thdot * thdot + 0.001 * u * u
        thdot = thdot + (3.0 * GRAVITY_MPS2 / (2.0 * LENGTH_M) * sin(th)
                         + 3.0 / (MASS_KG * LENGTH_M * LENGTH_M) * u) * DT_S
        thdot = min(max(thdot, -MAX_SPEED_RADPS), MAX_SPEED_RADPS)
        self.th = th + thdot * DT_S
        self.thdot = thdot
        self._observe()
        return -cost
