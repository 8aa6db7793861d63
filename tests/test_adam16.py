"""Adam with int16 moments (``adam_state="int16"``): device and mirror code the same moments, the
codes stay within their quantization bounds of float Adam's moments, and training equals the mirror."""

import json

import numpy as np
import pytest
import torch

from devicerun import compare_whole_run, run_device
from microrl_host.mirror.adam import Int16Adam
from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.rng import Rng

SHAPES = [(3, 5), (1, 5), (5, 1), (1, 1)]  # W_1, b_1, W_2, b_2 of a 3-5-1 network
LENGTHS = [r * c for r, c in SHAPES]
STEPS = 12


def gradients():
    """Gradients per step over the flat layout: scales 1e-4 to 1e2, some tensors all zero (decay
    alone), and a few elements zero at every step."""
    rng = Rng(17)
    out = []
    for step in range(STEPS):
        g = rng.normal_array(sum(LENGTHS)) * (10.0 ** (step % 4 - 2))
        g[:3] = 0.0
        if step >= 8:
            g[15:20] = 0.0  # b_1 stops receiving gradient: its moments only decay
        out.append(g)
    return out


def initial_params():
    return Rng(18).normal_array(sum(LENGTHS))


DEVICE_SCRIPT = """
from microrl.backend import K
from microrl.adam import Adam
spec = json.loads(%r)
shapes, flat = spec["shapes"], spec["params"]
params, grads, at = [], [], 0
for rows, cols in shapes:
    p = K.matrix(rows, cols)
    for i in range(rows):
        for j in range(cols):
            K.set(p, i, j, flat[at])
            at += 1
    params.append(p)
    grads.append(K.matrix(rows, cols))
adam = Adam(params, grads, spec["lr"], state="int16")
steps = []
for g in spec["grads"]:
    at = 0
    for m in grads:
        rows, cols = K.shape(m)
        for i in range(rows):
            for j in range(cols):
                K.set(m, i, j, g[at])
                at += 1
    adam.step()
    flat_p, qm, qv = [], [], []
    for k, p in enumerate(params):
        rows, cols = K.shape(p)
        for i in range(rows):
            for j in range(cols):
                flat_p.append(K.get(p, i, j))
                qm.append(int(K.get(adam.m[k], i, j)))
                qv.append(int(K.get(adam.v[k], i, j)))
    scales = [[K.get(adam.scales, k, 0), K.get(adam.scales, k, 1)] for k in range(len(params))]
    steps.append({"params": flat_p, "m": qm, "v": qv, "scales": scales})
print(json.dumps(steps))
"""


def device_steps(engine, backend=None):
    spec = {"shapes": SHAPES, "params": initial_params().tolist(), "lr": 1e-2,
            "grads": [g.tolist() for g in gradients()]}
    return run_device(DEVICE_SCRIPT % json.dumps(spec), engine=engine, backend=backend)


def mirror_steps():
    params = initial_params()
    grads = np.zeros_like(params)
    adam = Int16Adam(params, grads, LENGTHS, 1e-2)
    out = []
    for g in gradients():
        grads[:] = g
        adam.step()
        out.append({"params": params.copy(), "m": adam.m.copy(), "v": adam.v.copy(),
                    "scales": adam.scales.copy()})
    return out


@pytest.mark.parametrize("engine, backend", [("micropython", None), ("cpython", "python"),
                                             ("cpython", "numpy")])
def test_device_codes_equal_the_mirror_codes(engine, backend):
    device = device_steps(engine, backend)
    mirror = mirror_steps()
    for step, (d, m) in enumerate(zip(device, mirror)):
        np.testing.assert_array_equal(d["m"], m["m"], err_msg="m codes, step %d" % step)
        np.testing.assert_array_equal(d["v"], m["v"], err_msg="v codes, step %d" % step)
        np.testing.assert_allclose(d["scales"], m["scales"], rtol=1e-14, atol=0)
        np.testing.assert_allclose(d["params"], m["params"], rtol=0, atol=1e-14)


def test_codes_stay_within_their_quantization_bounds_of_float_adam():
    """Each step dequantizes the previous codes, so compare one step at a time against float Adam's
    moments computed from the dequantized state: m within half a step, sqrt(v) rounded up (never
    below float Adam's, but for the stated slack) by less than one step."""
    params = initial_params()
    grads = np.zeros_like(params)
    adam = Int16Adam(params, grads, LENGTHS, 1e-2)
    b1, b2 = adam.beta1, adam.beta2
    for g in gradients():
        per = np.repeat(adam.scales, adam.lengths, axis=0)
        m_float = b1 * (adam.m * per[:, 0]) + (1 - b1) * g
        r_float = np.sqrt(b2 * (adam.v * per[:, 1]) ** 2 + (1 - b2) * g * g)
        grads[:] = g
        adam.step()
        per = np.repeat(adam.scales, adam.lengths, axis=0)
        m_step, v_step = per[:, 0], per[:, 1]
        assert np.all(np.abs(adam.m * m_step - m_float) <= 0.5 * m_step * (1 + 1e-12))
        r_code = adam.v * v_step
        assert np.all(r_code >= r_float - 0.001 * v_step * (1 + 1e-9))
        assert np.all(r_code < r_float + v_step)
        assert np.abs(adam.m).max() == 32767 and adam.v.max() == 32767  # scales follow the max


def test_int16_adam_follows_torch_adam_closely():
    """Ten steps on the flat vector: the parameters stay within 2 % of a step of torch's Adam."""
    rng = Rng(21)
    params = rng.normal_array(300)
    grads = np.zeros_like(params)
    lr = 1e-3
    adam = Int16Adam(params, grads, [200, 100], lr)
    reference = torch.nn.Parameter(torch.from_numpy(params.copy()))
    optimizer = torch.optim.Adam([reference], lr=lr)
    for step in range(10):
        g = rng.normal_array(300) * (10.0 ** (step % 3 - 1))
        grads[:] = g
        adam.step()
        reference.grad = torch.from_numpy(g.copy())
        optimizer.step()
    diff = np.max(np.abs(params - reference.detach().numpy()))
    print("int16 Adam vs torch Adam after 10 steps: max |difference| %.2e (lr %.0e)" % (diff, lr))
    assert 0.0 < diff < 0.02 * lr


def test_bad_adam_state_is_rejected_on_both_sides():
    with pytest.raises(ValueError, match="adam_state"):
        TD3Config(adam_state="int8")
    out = run_device("""
from microrl.config import TD3Config
try:
    TD3Config(adam_state="bf16")
    print(json.dumps({"error": None}))
except ValueError as e:
    print(json.dumps({"error": str(e)}))
""")
    assert "adam_state" in out["error"]
    with pytest.raises(ValueError, match="lengths"):
        Int16Adam(np.zeros(4), np.zeros(4), [3], 1e-3)


RUN = dict(actor_hidden=[8, 8], critic_hidden=[8, 8], batch_size=8, buffer_capacity=2000,
           learning_starts=400, total_steps=2000, eval_every=1000, eval_episodes=2, seed=3,
           adam_state="int16")


@pytest.mark.parametrize("extra", [{}, dict(micro_batch=3, replay="compressed")])
def test_whole_run_with_int16_adam_micropython_equals_mirror(extra):
    compare_whole_run(dict(RUN, **extra), episodes=10)
