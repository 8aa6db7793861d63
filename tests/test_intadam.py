"""The viper backend's Adam and Polyak averaging in integers (device ``intadam``): each equals the
mirror's int64 arithmetic (``mirror.intadam``) bit for bit on float64 and float32 storage, stays
inside the 32-bit bound on adversarial gradients, and steps as float Adam does within the codes'
rounding."""

import json

import numpy as np
import pytest

from devicerun import run_device
from microrl_host.mirror import intadam, intdot
from microrl_host.mirror.adam import Adam

# Tensors of one learner step: (length, kind): kinds as the gradient generator below reads them.
TENSORS = [(48, "random"), (12, "sparse"), (144, "random"), (12, "zeros"), (1, "one"),
           (30, "huge"), (30, "tiny")]
STEPS = 12

SCRIPT = """
import binascii
from array import array
from microrl.backend import K, NAME, STORE_BITS
spec = json.loads(%r)
code = "d" if STORE_BITS == 64 else "f"

def matrix(hexdata):
    values = array(code, binascii.unhexlify(hexdata))
    m = K.matrix(1, len(values))
    for i in range(len(values)):
        m[0][i] = values[i]
    return m

def hexof(a):
    return binascii.hexlify(bytes(a)).decode()

params = [matrix(h) for h in spec["params"]]
grads = [K.matrix(1, len(p[0])) for p in params]
adam = K.IntAdam(params, grads, spec["lr"])
for step in spec["grads"]:
    for g, h in zip(grads, step):
        values = array(code, binascii.unhexlify(h))
        for i in range(len(values)):
            g[0][i] = values[i]
    adam.step()
targets = [matrix(h) for h in spec["targets"]]
for t, p in zip(targets, params):
    K.polyak(t, p, spec["tau"])
print(json.dumps({"backend": NAME, "params": [hexof(p[0]) for p in params],
                  "targets": [hexof(t[0]) for t in targets],
                  "m": [list(m[0]) for m in adam.m], "v": [list(v[0]) for v in adam.v],
                  "scales": list(adam.scales[0])}))
"""


def _gradients(rng, kind, n, step):
    if kind == "zeros" or (kind == "sparse" and step % 3 == 2):
        return np.zeros(n)
    if kind == "one":
        return np.array([(-1.0) ** step * 0.25])
    scale = {"random": 1e-2, "sparse": 1e-3, "huge": 1e6, "tiny": 1e-30}[kind]
    g = rng.normal(0.0, scale, n) * rng.uniform(0.0, 1.0, n) ** 4  # a wide range of magnitudes
    if kind == "sparse":
        g[rng.random(n) < 0.6] = 0.0
    return g * (10.0 if step == 5 else 1.0)  # a jump: the moments' scales shrink at once


def _case(kind_of_float):
    rng = np.random.default_rng(11)
    params = [rng.uniform(-0.5, 0.5, n).astype(kind_of_float) for n, _ in TENSORS]
    params[3][:] = 0.0  # an all-zero tensor: its scale comes from the step bound
    grads = [[_gradients(rng, kind, n, s).astype(kind_of_float) for n, kind in TENSORS]
             for s in range(STEPS)]
    targets = [(p + rng.normal(0, 0.01, p.shape)).astype(kind_of_float) for p in params]
    return params, grads, targets


@pytest.mark.parametrize("float_bits", [64, 32])
def test_adam_and_polyak_equal_the_mirror_bit_for_bit(float_bits):
    kind = np.float64 if float_bits == 64 else np.float32
    params, grads, targets = _case(kind)
    spec = {"params": [p.tobytes().hex() for p in params], "lr": 2e-3, "tau": 0.005,
            "grads": [[g.tobytes().hex() for g in step] for step in grads],
            "targets": [t.tobytes().hex() for t in targets]}
    out = run_device(SCRIPT % json.dumps(spec), backend="viper",
                     float_bits=32 if float_bits == 32 else None)
    assert out["backend"] == "viper"
    lengths = [n for n, _ in TENSORS]
    flat, flat_grads = np.concatenate(params), np.zeros(sum(lengths), kind)
    mirror = intadam.IntAdam(flat, flat_grads, lengths, 2e-3)
    for step in grads:
        flat_grads[:] = np.concatenate(step)
        mirror.step()
    device = np.concatenate([np.frombuffer(bytes.fromhex(h), kind) for h in out["params"]])
    np.testing.assert_array_equal(device, flat)
    assert np.abs(device - np.concatenate(params)).max() > 1e-3  # it did move
    np.testing.assert_array_equal(np.concatenate(out["m"]), mirror.m)
    np.testing.assert_array_equal(np.concatenate(out["v"]), mirror.v)
    np.testing.assert_array_equal(np.reshape(out["scales"], (-1, 4)), mirror.scales)
    target = np.concatenate(targets)
    intadam.polyak(target, flat, lengths, 0.005)
    device_t = np.concatenate([np.frombuffer(bytes.fromhex(h), kind) for h in out["targets"]])
    np.testing.assert_array_equal(device_t, target)


def test_the_bound_holds_and_its_checks_fail_beyond_it():
    """Gradients at the largest magnitudes, alternating sign, zeros, and jumps by 2**20 both ways:
    the mirror asserts every intermediate below 2**30 (the device's words)."""
    n = 64
    params = np.full(n, -1.999, np.float32)
    grads = np.zeros(n, np.float32)
    adam = intadam.IntAdam(params, grads, [32, 32], 1e-3)
    for step in range(40):
        sign = (-1.0) ** step
        grads[:32] = sign * (2.0 ** 20 if step % 10 < 5 else 2.0 ** -20)
        grads[32:] = 0.0 if step % 4 else sign * 3.0e38
        adam.step()
        assert np.isfinite(params).all()
        assert np.abs(adam.m).max() <= 32767 and adam.v.max() < 2**30
    with pytest.raises(intdot.BoundError, match="blended difference"):
        intadam._blend(np.array([2**30]), 3277, 18)


def test_ceil_sqrt_is_exact():
    v = np.concatenate([np.arange(0, 5000), np.arange(2**30 - 5000, 2**30),
                        np.array([k * k + d for k in (2**14, 2**15 - 1, 12345) for d in (-1, 0, 1)])])
    r = intadam.ceil_sqrt(v.astype(np.int64))
    assert (r * r >= v).all() and ((r - 1) * (r - 1) < v)[1:].all() and r[0] == 0


def test_steps_follow_float_adam_within_the_codes_rounding():
    """On gradients within 2**6 of their tensor's largest, the integer step follows float Adam's:
    within 10 % of lr at the first step, where v's codes hold about 20 bits (their scale leaves
    room for a whole g**2 while v holds 0.001 g**2), and within 4 % once v has grown (the codes
    gain the bits back from each step's largest code)."""
    rng = np.random.default_rng(3)
    n, lr = 200, 1e-3
    p_int = rng.uniform(-0.5, 0.5, n)
    p_float = p_int.copy()
    g_int, g_float = np.zeros(n), np.zeros(n)
    integer = intadam.IntAdam(p_int, g_int, [n], lr)
    floats = Adam(p_float, g_float, lr)
    big = rng.uniform(2.0 ** -6, 1.0, n) * np.sign(rng.normal(size=n))
    errors = []
    for step in range(20):
        before_i, before_f = p_int.copy(), p_float.copy()
        g = big * rng.uniform(0.9, 1.1, n) * 1e-2
        g_int[:], g_float[:] = g, g
        integer.step()
        floats.step()
        step_i, step_f = p_int - before_i, p_float - before_f
        assert np.abs(step_f).max() > 0.5 * lr
        errors.append(np.abs(step_i - step_f).max() / lr)
    assert 0 < max(errors) < 0.10 and max(errors[10:]) < 0.04, errors
