"""The servo against references: a fine-step RK4 of the same ODE, the closed-form solution of its
friction-free linear part, and the datasheet points its constants come from; and the device module
under MicroPython against the mirror, step by step and over whole TD3 runs."""

import math

import numpy as np
import pytest

from devicerun import compare_whole_run, run_device
from microrl_host.mirror import servo as S
from microrl_host.mirror.rng import Rng

# The RK4 reference takes REFERENCE_SUBSTEPS steps per control step (10 us), 400 times finer than
# the servo's sub-steps, with the Coulomb sign held per step and a step in which the speed
# crosses zero split there.
REFERENCE_SUBSTEPS = 2000
ANGLE_TOLERANCE_RAD = 1.5e-4
SPEED_TOLERANCE_RADPS = 6e-3


def _reference_step(th, w, duty):
    """One control step of the ODE in SI units by RK4; the Coulomb sign is held per fine step, a
    step in which w changes sign is split at the (interpolated) crossing, where stiction decides."""
    k_t, k_e, r_ohm = S.TORQUE_CONST_NM_PER_A, S.BACK_EMF_V_S_PER_RAD, S.RESISTANCE_OHM
    b, t_c, j = S.VISCOUS_NM_S_PER_RAD, S.COULOMB_NM, S.INERTIA_KG_M2
    mgl = S.ARM_MASS_KG * S.GRAVITY_M_PER_S2 * S.ARM_LENGTH_M
    volts = duty * S.SUPPLY_V
    h = S.DT_S / REFERENCE_SUBSTEPS

    def accel(th, w, sign):
        return (k_t * (volts - k_e * w) / r_ohm - b * w - t_c * sign - mgl * math.sin(th)) / j

    def rk4(th, w, sign, h):
        k1t, k1w = w, accel(th, w, sign)
        k2t, k2w = w + 0.5 * h * k1w, accel(th + 0.5 * h * k1t, w + 0.5 * h * k1w, sign)
        k3t, k3w = w + 0.5 * h * k2w, accel(th + 0.5 * h * k2t, w + 0.5 * h * k2w, sign)
        k4t, k4w = w + h * k3w, accel(th + h * k3t, w + h * k3w, sign)
        return (th + h / 6.0 * (k1t + 2.0 * k2t + 2.0 * k3t + k4t),
                w + h / 6.0 * (k1w + 2.0 * k2w + 2.0 * k3w + k4w))

    def breakaway_sign(th):
        drive = k_t * volts / r_ohm - mgl * math.sin(th)
        return 0.0 if abs(drive) <= t_c else (1.0 if drive > 0.0 else -1.0)

    for _ in range(REFERENCE_SUBSTEPS):
        sign = (1.0 if w > 0.0 else -1.0) if w != 0.0 else breakaway_sign(th)
        if sign == 0.0:
            continue
        th_next, w_next = rk4(th, w, sign, h)
        if w_next * sign > 0.0:
            th, w = th_next, w_next
            continue
        part = w / (w - w_next)  # the fraction of the step before w reaches zero
        th, _ = rk4(th, w, sign, part * h)
        w = 0.0
        sign = breakaway_sign(th)
        if sign != 0.0:
            th, w = rk4(th, 0.0, sign, (1.0 - part) * h)
    return th, w


def _duties(rng, n):
    """Full-range moves, holds below the breakaway duty, zero duty and reversals, in blocks."""
    out = []
    while len(out) < n:
        kind = rng.below(4)
        value = (2.0 * rng.uniform() - 1.0, 0.06 * (2.0 * rng.uniform() - 1.0), 0.0,
                 1.2 * (1.0 if rng.uniform() < 0.5 else -1.0))[kind]
        out += [value] * (1 + rng.below(12))
    return out[:n]


def test_matches_a_fine_step_rk4_reference():
    rng = Rng(11)
    env = S.Servo()
    worst_th = worst_w = 0.0
    rests = 0
    for _episode in range(2):
        env.reset(rng)
        th, w = env.th, env.w
        for duty in _duties(rng, 100):
            env.step([duty])
            th, w = _reference_step(th, w, min(max(duty, -1.0), 1.0))
            worst_th = max(worst_th, abs(S.angle_normalize(env.th - th)))
            worst_w = max(worst_w, abs(env.w - w))
            rests += env.w == 0.0
            th, w = env.th, env.w  # each step from the same state: the per-step error
    print("servo vs RK4 (%d fine steps per control step): max |angle| %.2e rad, max |speed| "
          "%.2e rad/s, %d steps ending at rest" % (REFERENCE_SUBSTEPS, worst_th, worst_w, rests))
    assert worst_th < ANGLE_TOLERANCE_RAD
    assert worst_w < SPEED_TOLERANCE_RADPS
    assert rests > 10  # stiction was exercised, not only free motion


def test_a_whole_episode_stays_on_the_reference():
    """Errors do not pile up: 100 steps from one start, the reference never resynchronised."""
    rng = Rng(5)
    env = S.Servo()
    env.reset(rng)
    th, w = env.th, env.w
    worst = 0.0
    for duty in _duties(rng, 100):
        env.step([duty])
        th, w = _reference_step(th, w, min(max(duty, -1.0), 1.0))
        worst = max(worst, abs(S.angle_normalize(env.th - th)))
    print("servo vs RK4 over one episode: max |angle difference| %.2e rad" % worst)
    assert worst < 6 * ANGLE_TOLERANCE_RAD


def test_friction_free_linear_part_equals_its_closed_form(monkeypatch):
    # Without Coulomb friction and load the ODE is linear: w' = D u - a w, solved exactly.
    monkeypatch.setattr(S, "_FRICTION_RADPS", 0.0)
    monkeypatch.setattr(S, "_LOAD_RADPS", 0.0)
    rate = S.DAMPING_NM_S_PER_RAD / S.INERTIA_KG_M2
    drive = S.TORQUE_CONST_NM_PER_A * S.SUPPLY_V / (S.RESISTANCE_OHM * S.INERTIA_KG_M2)
    rng = Rng(3)
    env = S.Servo()
    env.set_state((0.0, 0.0, 0.0))
    th, w = 0.0, 0.0
    worst = 0.0
    for _ in range(200):
        duty = 2.0 * rng.uniform() - 1.0
        env.advance(duty)
        w_inf = drive * duty / rate
        decay = math.exp(-rate * S.DT_S)
        th = S.angle_normalize(th + w_inf * S.DT_S + (w - w_inf) * (1.0 - decay) / rate)
        w = w_inf + (w - w_inf) * decay
        worst = max(worst, abs(S.angle_normalize(env.th - th)), abs(env.w - w))
    assert worst < 1e-9


def test_reproduces_the_datasheet_points(monkeypatch):
    # No load (arm removed): full duty settles at the no-load speed; at stall the net torque is the
    # stall torque.
    monkeypatch.setattr(S, "_LOAD_RADPS", 0.0)
    env = S.Servo()
    env.set_state((0.0, 0.0, 0.0))
    for _ in range(100):  # 2 s, 29 time constants
        env.advance(1.0)
    assert abs(env.w - S.NO_LOAD_SPEED_RAD_PER_S) < 1e-9
    stall_nm = S.TORQUE_CONST_NM_PER_A * S.STALL_CURRENT_A - S.COULOMB_NM
    assert abs(stall_nm - S.STALL_TORQUE_NM) < 1e-12
    no_load_a = (S.SUPPLY_V - S.BACK_EMF_V_S_PER_RAD * S.NO_LOAD_SPEED_RAD_PER_S) / S.RESISTANCE_OHM
    assert abs(no_load_a - S.NO_LOAD_CURRENT_A) < 1e-12
    assert S.RESISTANCE_OHM == 16.0


def test_stiction_holds_and_gravity_pulls():
    env = S.Servo()
    breakaway = S.COULOMB_NM * S.RESISTANCE_OHM / (S.TORQUE_CONST_NM_PER_A * S.SUPPLY_V)
    env.set_state((0.0, 0.0, 1.0))  # hanging straight down: no load torque
    for _ in range(10):
        env.advance(0.99 * breakaway)
    assert (env.th, env.w) == (0.0, 0.0)
    env.advance(1.01 * breakaway)
    assert env.th > 0.0 and env.w > 0.0
    env.set_state((math.pi / 2, 0.0, 0.0))  # horizontal: gravity exceeds stiction, the arm falls
    env.advance(0.0)
    assert env.th < math.pi / 2 and env.w < 0.0


def test_reset_observation_reward_and_bounds():
    rng, copy = Rng(9), Rng(9)
    env = S.Servo()
    obs = env.reset(rng)
    th = math.pi * (2.0 * copy.uniform() - 1.0)
    target = math.pi * (2.0 * copy.uniform() - 1.0)
    e = S.angle_normalize(th - target)
    assert obs.tolist() == [math.cos(e), math.sin(e), 0.0, math.cos(th), math.sin(th)]
    assert rng.state == copy.state and env.get_state() == (th, 0.0, target)
    low, high = np.array(env.obs_low), np.array(env.obs_high)
    fastest = 0.0
    for t in range(2000):
        duty = 1.5 if t % 400 < 200 else -1.5  # long full-duty runs: the speed bound is reached
        obs, reward, terminated = env.step([duty])
        assert not terminated
        assert np.all(obs >= low) and np.all(obs <= high)
        assert env.reward_range[0] <= reward <= env.reward_range[1]
        assert reward == pytest.approx(-(abs(env.error()) / math.pi + S.EFFORT_WEIGHT))
        fastest = max(fastest, abs(obs[2]))
    assert 0.9 < fastest <= 1.0


DEVICE_SCRIPT = """
from microrl.rng import Rng
from microrl.servo import Servo
rng = Rng(17)
env = Servo()
rows = []
for t in range(600):
    if t %% %d == 0:
        env.reset(rng)
    duty = 2.4 * rng.uniform() - 1.2
    if rng.below(3) == 0:
        duty *= 0.05
    obs, reward, terminated = env.step([duty])
    rows.append([duty, reward, terminated, list(obs), list(env.get_state())])
print(json.dumps(rows))
"""


@pytest.mark.parametrize("engine,backend", [("micropython", None), ("cpython", "numpy")],
                         ids=["micropython", "cpython-numpy"])
def test_device_servo_equals_the_mirror(engine, backend):
    rows = run_device(DEVICE_SCRIPT % S.EPISODE_STEPS, engine=engine, backend=backend,
                      heap="4M")
    rng = Rng(17)
    env = S.Servo()
    worst = 0.0
    for t, (duty, reward, terminated, obs, state) in enumerate(rows):
        if t % S.EPISODE_STEPS == 0:
            env.reset(rng)
        mirror_duty = 2.4 * rng.uniform() - 1.2
        if rng.below(3) == 0:
            mirror_duty *= 0.05
        assert duty == mirror_duty
        mirror_obs, mirror_reward, mirror_terminated = env.step([duty])
        assert terminated is mirror_terminated is False
        worst = max(worst, float(np.max(np.abs(np.subtract(obs, mirror_obs)))),
                    abs(reward - mirror_reward),
                    float(np.max(np.abs(np.subtract(state, env.get_state())))))
    print("%s servo vs mirror over %d steps: max |difference| %.2e" % (engine, len(rows), worst))
    assert len(rows) == 600
    assert worst < 1e-9


WHOLE_RUN = dict(env="servo", actor_hidden=[8, 8], critic_hidden=[8, 8], batch_size=8,
                 buffer_capacity=2000, learning_starts=400, total_steps=2000, eval_every=1000,
                 eval_episodes=2, seed=3)


# episode_updates 50: no updates inside an episode, 50 after each, as the hardware template trains
# (updates every step run the same device code: tests/test_environments.py, test_equivalence.py).
def test_whole_td3_run_on_the_servo_micropython_equals_mirror():
    _, _, diff = compare_whole_run(dict(WHOLE_RUN, episode_updates=50), episodes=20,
                                   tolerance=1e-9)
    assert diff < 1e-9
