"""The viper backend (device ``kernels_viper``): int16 codes, int32 sums, machine code from
``@micropython.viper``. Each kernel equals the mirror's integer arithmetic (``mirror.intdot``) bit
for bit on both storages, the sums stay inside the 32-bit bound, one update stays within the
quantization bound of the float update, and a whole run equals the mirror's integer-path run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from devicerun import DEVICE_DIR, TRAIN_SCRIPT, run_device
from microrl_host.mirror import intdot
from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.train import train

# (name, rows, kk, cols, zero fraction, magnitude): the cases every kernel runs on.
CASES = [("random", 16, 12, 12, 0.3, 3.0), ("first layer", 16, 4, 12, 0.0, 8.0),
         ("one column", 16, 12, 1, 0.0, 1.0), ("one row", 1, 12, 12, 0.5, 1.0),
         ("tiny", 8, 12, 12, 0.0, 1e-30), ("huge", 8, 12, 12, 0.0, 1e30),
         ("zeros", 8, 12, 12, 1.0, 1.0), ("largest", 16, 16, 16, 0.0, -1.0)]

KERNEL_SCRIPT = """
import binascii
from microrl.backend import K, NAME, STORE_BITS
spec = json.loads(%r)
code = "d" if STORE_BITS == 64 else "f"

def matrix(rows, cols, hexdata):
    m = K.matrix(rows, cols)
    data = binascii.unhexlify(hexdata)
    raw = memoryview(m[0]).cast("B") if hasattr(memoryview(m[0]), "cast") else None
    from array import array
    values = array(code, data)
    for i in range(rows * cols):
        m[0][i] = values[i]
    return m

def dump(m):
    return binascii.hexlify(bytes(m[0])).decode()

out = {"backend": NAME, "bits": STORE_BITS, "cases": []}
for case in spec["cases"]:
    r, kk, c = case["rows"], case["kk"], case["cols"]
    x = matrix(r, kk, case["x"])
    w = matrix(kk, c, case["w"])
    b = matrix(1, c, case["b"])
    d = matrix(r, c, case["d"])
    h = matrix(r, kk, case["h"])
    s = K.scratch_row(max(r, kk, c))
    res = {}
    res["dense_relu"] = dump(K.dense(K.matrix(r, c), x, w, b, r, s, True))
    res["dense"] = dump(K.dense(K.matrix(r, c), x, w, b, r, s, False))
    res["dot"] = dump(K.dot(K.matrix(r, c), x, w, r, s))
    gw, gb = K.matrix(kk, c), K.matrix(1, c)
    K.dense_grads(gw, gb, x, d, r, s)
    res["gw"], res["gb"] = dump(gw), dump(gb)
    K.dense_grads(gw, gb, x, d, r, s, True)
    res["gw2"], res["gb2"] = dump(gw), dump(gb)
    res["dot_nt"] = dump(K.dot_nt(K.matrix(r, kk), d, w, r, s))
    res["dot_nt_relu"] = dump(K.dot_nt_relu(h, d, w, r, s))
    out["cases"].append(res)
print(json.dumps(out))
"""


def _tensor(rng, shape, zeros, magnitude, kind):
    if magnitude < 0:  # every element at the largest magnitude a code can hold: the worst sums
        return np.full(shape, -(2.0 - 2.0**-20), kind)
    x = rng.uniform(-magnitude, magnitude, shape)
    x[rng.random(shape) < zeros] = 0.0
    return x.astype(kind)


def _cases(kind):
    rng = np.random.default_rng(7)
    out = []
    for name, r, kk, c, zeros, mag in CASES:
        t = {"name": name, "rows": r, "kk": kk, "cols": c,
             "x": _tensor(rng, (r, kk), zeros, mag, kind), "w": _tensor(rng, (kk, c), zeros, mag, kind),
             "b": _tensor(rng, (1, c), zeros, mag * 1e3 if mag > 0 else mag, kind),
             "d": _tensor(rng, (r, c), zeros, mag, kind),
             "h": np.maximum(_tensor(rng, (r, kk), 0.5, mag, kind), 0)}
        out.append(t)
    return out


def _expected(t, wide):
    x, w, b, d, h = t["x"], t["w"], t["b"], t["d"], t["h"]
    gw, gb = intdot.dense_grads(x, d, wide)
    return {"dense_relu": intdot.dense(x, w, b, True, wide), "dense": intdot.dense(x, w, b, False, wide),
            "dot": intdot.dot(x, w, wide), "gw": gw, "gb": gb, "gw2": gw + gw, "gb2": gb + gb,
            "dot_nt": intdot.dot_nt(d, w, wide), "dot_nt_relu": intdot.dot_nt_relu(h, d, w, wide)}


@pytest.mark.parametrize("float_bits", [64, 32])
def test_every_kernel_equals_the_mirror_bit_for_bit(float_bits):
    kind = np.float64 if float_bits == 64 else np.float32
    cases = _cases(kind)
    spec = {"cases": [{"rows": t["rows"], "kk": t["kk"], "cols": t["cols"],
                       **{k: t[k].tobytes().hex() for k in "xwbdh"}} for t in cases]}
    out = run_device(KERNEL_SCRIPT % json.dumps(spec), backend="viper",
                     float_bits=32 if float_bits == 32 else None)
    assert out["backend"] == "viper" and out["bits"] == float_bits
    for t, got in zip(cases, out["cases"]):
        want = _expected(t, float_bits == 64)
        for name, value in want.items():
            device = np.frombuffer(bytes.fromhex(got[name]), kind).reshape(np.shape(value))
            if float_bits == 32 and name in ("gw2", "gb2"):  # the sum of two float32s, rounded
                value = (np.float32(value / 2) + np.float32(value / 2))
            np.testing.assert_array_equal(device, np.asarray(value, kind),
                                          err_msg="%s: %s" % (t["name"], name))
        if t["name"] == "zeros":
            assert not np.frombuffer(bytes.fromhex(got["dot"]), kind).any()
        if t["name"] == "random":  # the integer products are close to float ones, not equal
            exact = t["x"].astype(np.float64) @ t["w"]
            device = np.frombuffer(bytes.fromhex(got["dot"]), kind).reshape(exact.shape)
            assert 0 < np.abs(device - exact).max() < 2.0**-8 * np.abs(exact).max()


def test_the_sums_stay_below_2_to_the_31():
    """budget() keeps kk (2**a - 1)(2**b - 1) below 2**30 for every reduction length (a bias code
    below 2**30 then keeps the total below 2**31), and the mirror's checks do fail beyond it."""
    for kk in list(range(1, 300)) + [1023, 1024, 1025, 4096, 65536]:
        a, b = intdot.budget(kk)
        assert a <= 15 and b <= 15 and kk * (2**a - 1) * (2**b - 1) < 2**30, kk
        assert a + b >= 29 - int(np.ceil(np.log2(kk))), kk  # and no precision wasted
    # Adversarial: every element at the largest magnitude, same sign, longest sums tested.
    for kk in (1, 4, 12, 16, 64, 256):
        x = np.full((4, kk), -1.999, np.float64)
        w = np.full((kk, 3), -1.999, np.float64)
        big_bias = np.full((1, 3), 1e12)
        intdot.dense(x, w, big_bias, False, True)  # asserts every intermediate
        intdot.dense_grads(x, x, True)
    with pytest.raises(intdot.BoundError, match="partial sum"):
        intdot._sum(np.full((1, 3), 2**15 - 1), np.full((3, 1), 2**15 - 1) * 2**3)


def _one_update_script(backend_rows):
    return """
from microrl.backend import NAME, K
from microrl.config import TD3Config
from microrl.train import Trainer
t = Trainer(TD3Config(actor_hidden=(12, 12), critic_hidden=(12, 12), batch_size=16,
                      buffer_capacity=500, learning_starts=300, seed=4))
while t.steps < 300:
    t.step()
a = t.agent
a.buffer.sample(t.rng, 16, a.batch)
q = a.critic1.forward(a.batch.sa, 16)
qs = [K.get(q, i, 0) for i in range(16)]
K.fill(a._dq, 1.0 / 16, 16)
a.critic1.backward(a._dq, 16, param_grads=True, input_grad=False)
grads = [[K.get(g, i, j) for i in range(K.shape(g)[0]) for j in range(K.shape(g)[1])]
         for g in a.critic1.grads]
print(json.dumps({"backend": NAME, "q": qs, "grads": grads}))
"""


def test_one_update_stays_within_the_quantization_bound_of_the_float_update():
    """The same batch through critic 1, forward and backward, with int16 products and with float
    ones. Bound: a code keeps 13 or more bits of its tensor's largest element (half an ulp of
    code: 2**-13 relative); a product of kk terms then errs by at most kk 2**-12 of |a| |b| at
    most; through three layers and back that stays below 2**-6 of each tensor's largest value."""
    viper = run_device(_one_update_script(16), backend="viper")
    floats = run_device(_one_update_script(16), backend="python")
    assert viper["backend"] == "viper" and floats["backend"] == "python"
    q_v, q_f = np.array(viper["q"]), np.array(floats["q"])
    assert 0 < np.abs(q_v - q_f).max() <= 2.0**-6 * np.abs(q_f).max()
    for g_v, g_f in zip(viper["grads"], floats["grads"]):
        g_v, g_f = np.array(g_v), np.array(g_f)
        assert np.abs(g_v - g_f).max() <= 2.0**-6 * np.abs(g_f).max()


def test_a_whole_run_equals_the_mirror_integer_path():
    config = dict(actor_hidden=[12, 12], critic_hidden=[12, 12], batch_size=16,
                  buffer_capacity=2000, learning_starts=200, total_steps=2000, episode_steps=200,
                  eval_every=1000, eval_episodes=1, seed=3)
    out = run_device(TRAIN_SCRIPT % (config,), backend="viper", timeout_s=120)
    mirror = train(TD3Config(**config), dtype=np.float64, products="int16")
    floats = train(TD3Config(**config), dtype=np.float64)
    assert len(out["episode_returns"]) == 10
    np.testing.assert_allclose(out["episode_returns"], mirror["episode_returns"], atol=1e-9, rtol=0)
    np.testing.assert_allclose([r for _, r in out["eval_returns"]],
                               [r for _, r in mirror["eval_returns"]], atol=1e-9, rtol=0)
    # ... and it is the integer path: the float run differs.
    assert np.abs(np.subtract(floats["episode_returns"], mirror["episode_returns"])).max() > 1e-3


def test_int16_mirror_rejects_micro_batches():
    config = TD3Config(batch_size=16, micro_batch=8)
    with pytest.raises(ValueError, match="whole batches"):
        train(config, products="int16")


def test_forcing_viper_without_the_emitter_names_the_lack():
    """On CPython there is no viper; on MicroPython built without the native emitter the probe's
    decorator raises SyntaxError: both give an ImportError naming the firmware's lack."""
    env = dict(os.environ, MICRORL_BACKEND="viper")
    no_micropython = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, %r); import microrl.backend"
         % str(DEVICE_DIR)], capture_output=True, text=True, env=env, timeout=60)
    assert no_micropython.returncode != 0
    assert "ImportError: MICRORL_BACKEND=viper: this is not MicroPython" in no_micropython.stderr
    fake = """
import sys, types
m = types.ModuleType("micropython")
def viper(f):
    raise SyntaxError("invalid micropython decorator")
m.viper = viper
m.const = lambda v: v
sys.modules["micropython"] = m
sys.path.insert(0, %r)
import microrl.backend
""" % str(DEVICE_DIR)
    no_emitter = subprocess.run([sys.executable, "-c", fake], capture_output=True, text=True,
                                env=env, timeout=60)
    assert no_emitter.returncode != 0
    assert "this firmware has no native emitter, so it cannot compile viper" in no_emitter.stderr
    # Not forced, the same firmware falls back to the float kernels and says why.
    env.pop("MICRORL_BACKEND")
    fallback = subprocess.run([sys.executable, "-c", fake.replace(
        "import microrl.backend", "import microrl.backend as b; print(b.NAME, '|', b.REASON)")
        .replace('sys.modules["micropython"] = m', 'sys.modules["micropython"] = m\n'
                 'sys.modules["numpy"] = None')], capture_output=True, text=True, env=env,
        timeout=60)
    assert fallback.stdout.startswith("python | no ulab, and this firmware has no native emitter")


def test_bench_parity_trains_the_int16_products_on_a_board_learner(tmp_path, capsys):
    from microrl_host.cli import main

    out = tmp_path / "parity"
    code = main(["bench-parity", "--board", "rp2-pico", "--seeds", "1", "--steps", "1200",
                 "--variant", "int16 products (viper backend)", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "parity.json").read_text())
    reference, viper = doc["results"]
    assert viper["fields"] == {"products": "int16"}
    assert reference["runs"][0]["final_eval_return"] != viper["runs"][0]["final_eval_return"]
    assert (out / "parity.md").read_text().startswith(
        "Mirror, rp2-pico learner (12x12, batch 16), float32, 1200 steps")
    assert main(["bench-parity", "--board", "rp2-picoo", "--out", str(out)]) == 2
    assert "unknown board 'rp2-picoo'" in capsys.readouterr().err


def test_options_train_on_viper_as_on_the_mirror_integer_path():
    """Compressed replay and the int8 acting actor on the viper backend: the run equals the
    mirror's integer path (the int8 actor once failed to build on this backend)."""
    config = dict(actor_hidden=[8, 8], critic_hidden=[8, 8], batch_size=8, buffer_capacity=600,
                  learning_starts=100, total_steps=600, episode_steps=100, eval_every=300,
                  eval_episodes=1, seed=5, replay="compressed", act_int8=True)
    out = run_device(TRAIN_SCRIPT % (config,), backend="viper", timeout_s=120)
    mirror = train(TD3Config(**config), dtype=np.float64, products="int16")
    assert len(out["episode_returns"]) == 6
    np.testing.assert_allclose(out["episode_returns"], mirror["episode_returns"], atol=1e-9, rtol=0)
