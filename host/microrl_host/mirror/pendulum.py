"""Pendulum-v1 (gymnasium's classic-control swing-up), scalar physics with `math`.

State is the angle `th` (rad, 0 = upright) and angular velocity `thdot` (rad/s). Episodes are
truncated by the caller after `episode_steps`; the environment itself never terminates.
"""

import math

import numpy as np

G_M_PER_S2 = 10.0  # gravity
MASS_KG = 1.0  # pendulum mass
LENGTH_M = 1.0  # pendulum length
DT_S = 0.05  # integration step
MAX_SPEED_RAD_PER_S = 8.0  # |thdot| clip
MAX_TORQUE_NM = 2.0  # |torque| clip; a normalised action a maps to a * MAX_TORQUE_NM
OBS_DIM = 3  # [cos th, sin th, thdot]
ACT_DIM = 1
EPISODE_STEPS = 200

GRAVITY_TERM = 3.0 * G_M_PER_S2 / (2.0 * LENGTH_M)  # thdot' = GRAVITY_TERM sin th + TORQUE_TERM u
TORQUE_TERM = 3.0 / (MASS_KG * LENGTH_M**2)


def angle_normalize(x):
    """Wrap an angle to [-pi, pi)."""
    return ((x + math.pi) % (2.0 * math.pi)) - math.pi


class Pendulum:
    """One pendulum. `reset(rng)` draws the start state; `step(action)` (the environment protocol,
    action in [-1, 1]) and `advance(torque_nm)` advance it by DT_S."""

    dt_s = DT_S
    max_speed = MAX_SPEED_RAD_PER_S
    max_torque_nm = MAX_TORQUE_NM
    obs_dim = OBS_DIM
    act_dim = ACT_DIM
    obs_low = (-1.0, -1.0, -MAX_SPEED_RAD_PER_S)
    obs_high = (1.0, 1.0, MAX_SPEED_RAD_PER_S)
    reward_range = (-16.3, 0.0)  # the worst cost is pi^2 + 0.1 * 8^2 + 0.001 * 2^2 = 16.27
    episode_steps = EPISODE_STEPS

    def __init__(self):
        self.th = 0.0
        self.thdot = 0.0

    def reset(self, rng):
        """Uniform start: th in [-pi, pi), thdot in [-1, 1) (two uniforms, th first)."""
        self.th = math.pi * (2.0 * rng.uniform() - 1.0)
        self.thdot = 2.0 * rng.uniform() - 1.0
        return self.observation()

    def observation(self):
        """[cos th, sin th, thdot] as a float64 array of shape (3,)."""
        return np.array((math.cos(self.th), math.sin(self.th), self.thdot))

    def get_state(self):
        return (self.th, self.thdot)

    def set_state(self, state):
        """Set (th, thdot) exactly; returns the observation."""
        self.th, self.thdot = float(state[0]), float(state[1])
        return self.observation()

    def step(self, action):
        """The protocol's step: torque = action[0] * MAX_TORQUE_NM; returns (obs, reward, False)."""
        reward = self.advance(float(action[0]) * MAX_TORQUE_NM)
        return self.observation(), reward, False

    def advance(self, torque_nm):
        """`step` without building the observation; returns the reward."""
        u = min(max(float(torque_nm), -MAX_TORQUE_NM), MAX_TORQUE_NM)
        th = self.th
        thdot = self.thdot
        cost = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * u**2
        thdot = thdot + (GRAVITY_TERM * math.sin(th) + TORQUE_TERM * u) * DT_S
        thdot = min(max(thdot, -MAX_SPEED_RAD_PER_S), MAX_SPEED_RAD_PER_S)
        self.th = th + thdot * DT_S
        self.thdot = thdot
        return -cost
