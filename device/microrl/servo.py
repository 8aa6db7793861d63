"""DC motor position servo: a small gearmotor swings a weighted arm to a target angle and holds it.

The plant is Pololu's 75:1 Micro Metal Gearmotor HPCB 12V with 12 CPR encoder (item 5215; its
datasheet values below) driven by an H-bridge at PWM duty ``u`` in [-1, 1] from a 12 V supply,
with viscous and Coulomb friction and the gravity load of an arm. Inductance is neglected (L/R, a
fraction of a millisecond, against a mechanical time constant of 68 ms), so the current follows
the voltage and, at the output shaft,

    J w' = k_t (u V - k_e w) / R - b w - T_c sign(w) - m g l sin(th)

with stiction (the shaft stays at rest while the drive torque is within T_c). Each control step
holds ``u`` for ``DT_S`` in ``SUBSTEPS`` sub-steps; in each the friction torque and the load at
the sub-step's middle angle are held and the linear part is solved exactly (``w`` relaxes
exponentially to its steady speed); where ``w`` reaches zero the shaft stops at that instant and
stiction decides whether it starts again. The state is Python floats: a step allocates only them
and the returned tuple. The observation is [cos e, sin e, w / MAX_SPEED_RADPS, cos th, sin th],
e = th - target wrapped to [-pi, pi); the reward -(|e| / pi + EFFORT_WEIGHT u^2) is that of the
state after the step. docs/ENVIRONMENTS.md derives every constant.
"""

from array import array
from math import cos, exp, log, pi, sin

from .backend import FLOAT_BITS, const

# Datasheet (Pololu item 5215): 12 V; no load 450 RPM, 80 mA; stall 1.0 kg cm, 0.75 A; 75.81:1.
SUPPLY_V = 12.0
STALL_CURRENT_A = 0.75
STALL_TORQUE_NM = 0.0980665
NO_LOAD_SPEED_RADPS = 450.0 * 2.0 * pi / 60.0
NO_LOAD_CURRENT_A = 0.08
GEAR_RATIO = 75.81
# Not in the datasheet: an iron-core rotor of about 2 g and 4 mm radius, and the arm (a point
# mass) the servo swings.
ROTOR_INERTIA_KGM2 = 1.6e-8
ARM_MASS_KG = 0.02
ARM_LENGTH_M = 0.05
GRAVITY_MPS2 = 9.81
# Derived, at the output shaft: half of the no-load friction torque is Coulomb, half viscous.
RESISTANCE_OHM = SUPPLY_V / STALL_CURRENT_A
BACK_EMF_VSPRAD = (SUPPLY_V - NO_LOAD_CURRENT_A * RESISTANCE_OHM) / NO_LOAD_SPEED_RADPS
TORQUE_CONST_NMPA = STALL_TORQUE_NM / (STALL_CURRENT_A - 0.5 * NO_LOAD_CURRENT_A)
COULOMB_NM = 0.5 * TORQUE_CONST_NMPA * NO_LOAD_CURRENT_A
VISCOUS_NMSPRAD = COULOMB_NM / NO_LOAD_SPEED_RADPS
LOAD_NM = ARM_MASS_KG * GRAVITY_MPS2 * ARM_LENGTH_M
INERTIA_KGM2 = GEAR_RATIO * GEAR_RATIO * ROTOR_INERTIA_KGM2 + ARM_MASS_KG * ARM_LENGTH_M ** 2
_DAMPING_NMSPRAD = TORQUE_CONST_NMPA * BACK_EMF_VSPRAD / RESISTANCE_OHM + VISCOUS_NMSPRAD
# The largest speed any duty reaches (gravity helping): the speed bound of the observation.
MAX_SPEED_RADPS = (TORQUE_CONST_NMPA * SUPPLY_V / RESISTANCE_OHM - COULOMB_NM
                   + LOAD_NM) / _DAMPING_NMSPRAD

DT_S = 0.02
SUBSTEPS = const(5)
EPISODE_STEPS = const(100)
OBS_DIM = const(5)
ACT_DIM = const(1)
EFFORT_WEIGHT = 0.05

_H_S = DT_S / SUBSTEPS
_HALF_H_S = 0.5 * _H_S
_RATE = _DAMPING_NMSPRAD / INERTIA_KGM2  # 1/s: w relaxes as exp(-_RATE t)
_INV_RATE = 1.0 / _RATE
_DECAY = exp(-_RATE * _H_S)
_GAIN = (1.0 - _DECAY) / _RATE
# Steady speeds (rad/s) of the drive at full duty, of the load and of Coulomb friction alone.
_DRIVE_RADPS = TORQUE_CONST_NMPA * SUPPLY_V / RESISTANCE_OHM / _DAMPING_NMSPRAD
_FRICTION_RADPS = COULOMB_NM / _DAMPING_NMSPRAD
_LOAD_RADPS = LOAD_NM / _DAMPING_NMSPRAD
_INV_MAX_SPEED = 1.0 / MAX_SPEED_RADPS
_INV_PI = 1.0 / pi
_TWO_PI = 2.0 * pi


def angle_normalize(x):
    return ((x + pi) % _TWO_PI) - pi


class Servo:
    """Reach and hold a target angle: the environment protocol, one duty in, five floats out."""

    obs_dim = OBS_DIM
    act_dim = ACT_DIM
    obs_low = (-1.0, -1.0, -1.0, -1.0, -1.0)
    obs_high = (1.0, 1.0, 1.0, 1.0, 1.0)
    reward_range = (-1.0 - EFFORT_WEIGHT, 0.0)
    episode_steps = EPISODE_STEPS

    def __init__(self):
        self.th = 0.0
        self.w = 0.0
        self.target = 0.0
        self.obs = array("d" if FLOAT_BITS == 64 else "f", (0.0, 0.0, 0.0, 0.0, 0.0))

    def _observe(self):
        th = self.th
        e = angle_normalize(th - self.target)
        obs = self.obs
        obs[0] = cos(e)
        obs[1] = sin(e)
        obs[2] = self.w * _INV_MAX_SPEED
        obs[3] = cos(th)
        obs[4] = sin(th)
        return e

    def reset(self, rng):
        """At rest at th ~ U[-pi, pi), target ~ U[-pi, pi) (drawn in that order)."""
        self.th = pi * (2.0 * rng.uniform() - 1.0)
        self.target = pi * (2.0 * rng.uniform() - 1.0)
        self.w = 0.0
        self._observe()
        return self.obs

    def get_state(self):
        return (self.th, self.w, self.target)

    def set_state(self, state):
        """Set (th, w, target) exactly; returns the observation array."""
        self.th = state[0]
        self.w = state[1]
        self.target = state[2]
        self._observe()
        return self.obs

    def step(self, action):
        """Hold duty action[0] (clipped to [-1, 1]) for DT_S; returns (obs, reward, False)."""
        u = min(max(action[0], -1.0), 1.0)
        self.advance(u)
        e = self._observe()
        return self.obs, -(abs(e) * _INV_PI + EFFORT_WEIGHT * u * u), False

    def advance(self, duty):
        """Integrate DT_S at ``duty`` in [-1, 1] (the angle is kept in [-pi, pi))."""
        drive = _DRIVE_RADPS * duty
        th = self.th
        w = self.w
        for _ in range(SUBSTEPS):
            # The speed w relaxes to in this sub-step: the drive's less the load's (taken at the
            # sub-step's middle angle) and friction's.
            w_inf = drive - _LOAD_RADPS * sin(th + w * _HALF_H_S)
            if w > 0.0:
                w_inf -= _FRICTION_RADPS
            elif w < 0.0:
                w_inf += _FRICTION_RADPS
            elif w_inf > _FRICTION_RADPS:
                w_inf -= _FRICTION_RADPS
            elif w_inf < -_FRICTION_RADPS:
                w_inf += _FRICTION_RADPS
            else:
                continue  # stiction holds the shaft
            dw = w - w_inf
            w_next = w_inf + dw * _DECAY
            if (w >= 0.0 and w_next >= 0.0) or (w <= 0.0 and w_next <= 0.0):
                th += w_inf * _H_S + dw * _GAIN
                w = w_next
                continue
            # w reaches zero inside the sub-step: stop exactly there, then start from rest.
            t_stop_s = log(-dw / w_inf) * _INV_RATE
            th += w * _INV_RATE + w_inf * t_stop_s
            w_inf = drive - _LOAD_RADPS * sin(th)
            if w_inf > _FRICTION_RADPS:
                w_inf -= _FRICTION_RADPS
            elif w_inf < -_FRICTION_RADPS:
                w_inf += _FRICTION_RADPS
            else:
                w = 0.0
                continue
            rest_s = _H_S - t_stop_s
            w = w_inf * (1.0 - exp(-_RATE * rest_s))
            th += w_inf * rest_s - w * _INV_RATE
        self.th = angle_normalize(th)
        self.w = w
