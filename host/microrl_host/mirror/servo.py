"""DC motor position servo, the mirror of device/microrl/servo.py: the same float64 arithmetic.

A Pololu 75:1 Micro Metal Gearmotor HPCB 12V (item 5215) at PWM duty u in [-1, 1] of a 12 V supply
swings an arm (a 20 g point mass 5 cm out) to a target angle drawn per episode. At the output shaft

    J w' = k_t (u V - k_e w) / R - b w - T_c sign(w) - m g l sin(th),

with stiction, integrated in `SUBSTEPS` sub-steps per control step: friction and load held, the
linear part solved exactly, a zero crossing of w located exactly. Constants and their sources:
docs/ENVIRONMENTS.md.
"""

import math

import numpy as np

# Datasheet (Pololu item 5215): 12 V; no load 450 RPM, 80 mA; stall 1.0 kg cm, 0.75 A; 75.81:1.
SUPPLY_V = 12.0
STALL_CURRENT_A = 0.75
STALL_TORQUE_NM = 0.0980665  # 1.0 kg cm
NO_LOAD_SPEED_RAD_PER_S = 450.0 * 2.0 * math.pi / 60.0
NO_LOAD_CURRENT_A = 0.08
GEAR_RATIO = 75.81
ROTOR_INERTIA_KG_M2 = 1.6e-8  # estimated: an iron-core rotor of about 2 g, 4 mm radius
ARM_MASS_KG = 0.02
ARM_LENGTH_M = 0.05
GRAVITY_M_PER_S2 = 9.81
# Derived at the output shaft; the no-load friction torque is split half Coulomb, half viscous.
RESISTANCE_OHM = SUPPLY_V / STALL_CURRENT_A
BACK_EMF_V_S_PER_RAD = (SUPPLY_V - NO_LOAD_CURRENT_A * RESISTANCE_OHM) / NO_LOAD_SPEED_RAD_PER_S
TORQUE_CONST_NM_PER_A = STALL_TORQUE_NM / (STALL_CURRENT_A - 0.5 * NO_LOAD_CURRENT_A)
COULOMB_NM = 0.5 * TORQUE_CONST_NM_PER_A * NO_LOAD_CURRENT_A
VISCOUS_NM_S_PER_RAD = COULOMB_NM / NO_LOAD_SPEED_RAD_PER_S
LOAD_NM = ARM_MASS_KG * GRAVITY_M_PER_S2 * ARM_LENGTH_M
INERTIA_KG_M2 = GEAR_RATIO * GEAR_RATIO * ROTOR_INERTIA_KG_M2 + ARM_MASS_KG * ARM_LENGTH_M ** 2
DAMPING_NM_S_PER_RAD = TORQUE_CONST_NM_PER_A * BACK_EMF_V_S_PER_RAD / RESISTANCE_OHM \
    + VISCOUS_NM_S_PER_RAD
MAX_SPEED_RAD_PER_S = (TORQUE_CONST_NM_PER_A * SUPPLY_V / RESISTANCE_OHM - COULOMB_NM
                       + LOAD_NM) / DAMPING_NM_S_PER_RAD  # the fastest any duty gets: obs bound

DT_S = 0.02  # control period
SUBSTEPS = 5  # integration sub-steps per control step
EPISODE_STEPS = 100
OBS_DIM = 5  # [cos e, sin e, w / MAX_SPEED, cos th, sin th]
ACT_DIM = 1
EFFORT_WEIGHT = 0.05  # reward -(|e| / pi + EFFORT_WEIGHT u^2)
# The mean evaluation return counted as "reaches and holds the target"
# (tests/test_servo_learning.py; zero duty scores -48, a tuned PD controller -1.8).
SOLVED_RETURN = -3.0

_H_S = DT_S / SUBSTEPS
_HALF_H_S = 0.5 * _H_S
_RATE = DAMPING_NM_S_PER_RAD / INERTIA_KG_M2  # 1/s: w relaxes as exp(-_RATE t)
_INV_RATE = 1.0 / _RATE
_DECAY = math.exp(-_RATE * _H_S)
_GAIN = (1.0 - _DECAY) / _RATE
# Steady speeds (rad/s) of the drive at full duty, of the load and of Coulomb friction alone.
_DRIVE_RADPS = TORQUE_CONST_NM_PER_A * SUPPLY_V / RESISTANCE_OHM / DAMPING_NM_S_PER_RAD
_FRICTION_RADPS = COULOMB_NM / DAMPING_NM_S_PER_RAD
_LOAD_RADPS = LOAD_NM / DAMPING_NM_S_PER_RAD
_INV_MAX_SPEED = 1.0 / MAX_SPEED_RAD_PER_S
_INV_PI = 1.0 / math.pi


def angle_normalize(x):
    """Wrap an angle to [-pi, pi)."""
    return ((x + math.pi) % (2.0 * math.pi)) - math.pi


class Servo:
    """One servo. `reset(rng)` draws the start angle and the target; `step(action)` runs DT_S."""

    obs_dim = OBS_DIM
    act_dim = ACT_DIM
    obs_low = (-1.0,) * OBS_DIM
    obs_high = (1.0,) * OBS_DIM
    reward_range = (-1.0 - EFFORT_WEIGHT, 0.0)
    episode_steps = EPISODE_STEPS
    dt_s = DT_S

    def __init__(self):
        self.th = 0.0
        self.w = 0.0
        self.target = 0.0

    def error(self):
        """th - target wrapped to [-pi, pi)."""
        return angle_normalize(self.th - self.target)

    def observation(self):
        """[cos e, sin e, w / MAX_SPEED, cos th, sin th] as a new float64 array of shape (5,)."""
        e = self.error()
        return np.array((math.cos(e), math.sin(e), self.w * _INV_MAX_SPEED, math.cos(self.th),
                         math.sin(self.th)))

    def reset(self, rng):
        """At rest at th ~ U[-pi, pi), target ~ U[-pi, pi) (two uniforms, th first)."""
        self.th = math.pi * (2.0 * rng.uniform() - 1.0)
        self.target = math.pi * (2.0 * rng.uniform() - 1.0)
        self.w = 0.0
        return self.observation()

    def get_state(self):
        return (self.th, self.w, self.target)

    def set_state(self, state):
        self.th, self.w, self.target = (float(v) for v in state)
        return self.observation()

    def step(self, action):
        """Duty action[0] clipped to [-1, 1] for DT_S; returns (observation, reward, False)."""
        reward = self.step_reward(action[0])
        return self.observation(), reward, False

    def step_reward(self, duty):
        """`step` without building the observation: clip, advance, return the reward."""
        u = min(max(float(duty), -1.0), 1.0)
        self.advance(u)
        return -(abs(self.error()) * _INV_PI + EFFORT_WEIGHT * u * u)

    def advance(self, duty):
        """Integrate DT_S at `duty` in [-1, 1]; the angle is kept in [-pi, pi)."""
        drive = _DRIVE_RADPS * duty
        th = self.th
        w = self.w
        for _ in range(SUBSTEPS):
            # The speed w relaxes to in this sub-step: the drive's less the load's (taken at the
            # sub-step's middle angle) and friction's.
            w_inf = drive - _LOAD_RADPS * math.sin(th + w * _HALF_H_S)
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
            t_stop_s = math.log(-dw / w_inf) * _INV_RATE
            th += w * _INV_RATE + w_inf * t_stop_s
            w_inf = drive - _LOAD_RADPS * math.sin(th)
            if w_inf > _FRICTION_RADPS:
                w_inf -= _FRICTION_RADPS
            elif w_inf < -_FRICTION_RADPS:
                w_inf += _FRICTION_RADPS
            else:
                w = 0.0
                continue
            rest_s = _H_S - t_stop_s
            w = w_inf * (1.0 - math.exp(-_RATE * rest_s))
            th += w_inf * rest_s - w * _INV_RATE
        self.th = angle_normalize(th)
        self.w = w
