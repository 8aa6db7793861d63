"""The machine-code products on the QEMU firmware they are written for (skipped without it).

kernels_vfp is Thumb-2 assembler with FPU instructions, which the Cortex-M7 firmware with ulab
runs; kernels_thumb is ARMv6-M integer code, which the Cortex-M0 firmware with ulab runs
(firmware/build_qemu.sh, from your own micropython and micropython-ulab checkouts). Give the
directory of the firmware as FIRMWARE_DIR (as for make bench-mcu) to run these tests; CI has none
and skips them.

The pure-Python backend computes with the same routines on the firmware without ulab
(kernels_py.use_machine_code): its training must be the plain loops' own, bit for bit on the M0
(whose routine rounds as the loops do), within float32 rounding on the M7 (whose products are
fused multiply-adds).

The products and Adam (kernels_asm.adam) must be ulab's own, bit for bit (on the M7 ulab's ``dot``
adds each term with a fused multiply-add; on the M0 it rounds the product, then the sum), the
bias, gradient accumulation, ReLU and ReLU mask included; the column sums are sums in row order.
The operands are uniform in [-3, 3), then spread over 60 binary orders of magnitude, then small
integers and zeros (exact cancellations, ties, skipped terms).
"""

import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from microrl_host.board import deploy
from microrl_host.board.qemu import CORES, QemuBoard
from test_compressed_viper import SCRIPT as DECODE_SCRIPT

FIRMWARE_DIR = os.environ.get("FIRMWARE_DIR")

SCRIPT = """
import json
from ulab import numpy as np
from microrl.backend import PRODUCTS
from microrl import kernels_asm as V
seed = [12345]
def rnd():
    seed[0] = (seed[0] * 1103515245 + 12345) & 0x7fffffff
    return seed[0] / 0x7fffffff
MODE = [0]
def val():
    u = rnd()
    if MODE[0] == 0:
        return u * 6 - 3
    if MODE[0] == 1:
        return (-1 if rnd() < 0.5 else 1) * (1 + u) * 2.0 ** (int(rnd() * 60) - 30)
    return float(int(u * 7) - 3) if rnd() < 0.7 else 0.0
def mat(r, c, zeros=False):
    m = np.zeros((r, c), dtype=np.float)
    for i in range(r):
        for j in range(c):
            m[i, j] = 0.0 if zeros else val()
    return m
def diff(a, b):
    r, c = b.shape
    return sum(1 for i in range(r) for j in range(c) if a[i, j] != b[i, j])
out = {"products": PRODUCTS, "checked": 0, "bad": {}}
def check(name, got, want):
    out["checked"] += 1
    n = diff(got, want)
    if n:
        out["bad"][name] = out["bad"].get(name, 0) + n
for rows, n, k, m, MODE[0] in ((16, 16, 4, 12, 0), (16, 16, 12, 12, 0), (16, 16, 12, 1, 0),
                               (8, 5, 3, 7, 0), (16, 16, 12, 12, 1), (16, 16, 40, 12, 1),
                               (16, 16, 12, 12, 2), (16, 16, 40, 12, 2)):
    x = mat(rows, k)
    d = mat(rows, m)
    flat = mat(1, k * m + m)
    w = flat[0, 0:k * m].reshape((k, m))
    b = flat[0, k * m:k * m + m].reshape((1, m))
    xn, dn = x[:n], d[:n]
    ref = np.dot(xn, w)
    ref += b
    o = mat(rows, m, True)
    check("dense", V.dense(o, x, w, b, n, None, False)[:n], ref)
    check("dense relu", V.dense(o, x, w, b, n, None, True)[:n], np.maximum(ref, 0.0))
    gflat = mat(1, k * m + m)
    gw = gflat[0, 0:k * m].reshape((k, m))
    gb = gflat[0, k * m:k * m + m].reshape((1, m))
    want_w = np.dot(xn.T, dn)
    want_b = mat(1, m, True)
    for j in range(m):
        s = 0.0
        for i in range(n):
            s += dn[i, j]
        want_b[0, j] = s
    V.dense_grads(gw, gb, x, d, n, None, False)
    check("grad w", gw, want_w)
    check("grad b", gb, want_b)
    acc_w = want_w + want_w
    acc_b = want_b + want_b
    V.dense_grads(gw, gb, x, d, n, None, True)
    check("grad w acc", gw, acc_w)
    check("grad b acc", gb, acc_b)
    o = mat(rows, k, True)
    check("dot_nt", V.dot_nt(o, d, w, n)[:n], np.dot(dn, w.T))
    h = mat(rows, k)
    want = np.dot(dn, w.T)
    want *= h[:n] > 0.0
    check("dot_nt_relu", V.dot_nt_relu(h, d, w, n)[:n], want)
from microrl.backend import K
for cols, n, offset in ((3, 16, False), (4, 16, True), (1, 9, True)):
    m = mat(16, cols)
    scale = K.row([val() for j in range(cols)])
    shift = K.row([val() for j in range(cols)]) if offset else None
    want = mat(16, cols, True)
    for i in range(16):
        for j in range(cols):
            x = m[i, j]
            if i < n:
                x = x * scale[0, j]
                if offset:
                    x = x + shift[0, j]
            want[i, j] = x
    V.affine_columns(m, cols, scale, shift, n)
    check("affine", m, want)
def ulab_adam(p, g, m, v, tmp, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    # kernels_nd.adam, which kernels_asm.adam replaces on these cores
    m *= beta1
    v *= beta2
    tmp -= tmp
    tmp += g
    tmp *= g
    tmp *= 1.0 - beta2
    v += tmp
    g *= 1.0 - beta1
    m += g
    np.sqrt(v, out=tmp)
    tmp *= inv_sqrt_bc2
    tmp += eps
    tmp **= -1.0
    tmp *= m
    tmp *= step_size
    p -= tmp
MODE[0] = 0
out["adam"] = V._adam is not None
for n, scale in ((217, 1.0), (50, 1e-3), (50, 30.0)):
    p1, m1, v1 = mat(1, n), mat(1, n), mat(1, n)
    for i in range(n):
        p1[0, i] /= 3.0
        m1[0, i] *= scale
        v1[0, i] = abs(v1[0, i]) * scale * scale
    p2, m2, v2 = p1 * 1.0, m1 * 1.0, v1 * 1.0
    for t in range(1, 4):
        g1 = mat(1, n) * scale
        g2 = g1 * 1.0
        step = 2e-3 / (1.0 - 0.9 ** t)
        inv = 1.0 / (1.0 - 0.999 ** t) ** 0.5
        ulab_adam(p1, g1, m1, v1, mat(1, n, True), step, 0.9, 0.999, 1e-8, inv)
        V.adam(p2, g2, m2, v2, None, step, 0.9, 0.999, 1e-8, inv)
        check("adam p", p2, p1)
        check("adam m", m2, m1)
        check("adam v", v2, v1)
print(json.dumps(out))
"""


def _firmware(name):
    if not FIRMWARE_DIR:
        pytest.skip("FIRMWARE_DIR (QEMU firmware from firmware/build_qemu.sh) is not set")
    if not shutil.which("qemu-system-arm"):
        pytest.skip("qemu-system-arm is not installed")
    found = sorted(Path(FIRMWARE_DIR).glob(name))
    if not found:
        pytest.skip("no %s in %s" % (name, FIRMWARE_DIR))
    return found[0]


def run_on(core, firmware, code):
    with QemuBoard(CORES[core], firmware) as board:
        text = deploy.mpremote(board.port, "exec", code, timeout_s=300)
    return json.loads(text.strip().splitlines()[-1])


@pytest.mark.parametrize("core,products", [("m7", "vfp"), ("m0", "thumb")])
def test_machine_code_products_are_ulabs_bit_for_bit(core, products):
    out = run_on(core, _firmware("%s-ulab-*.elf" % core), SCRIPT)
    assert out["products"] == products
    assert out["adam"] is True
    assert out["checked"] == 8 * 8 + 3 + 3 * 3 * 3
    assert out["bad"] == {}


@pytest.mark.parametrize("core,firmware,backend", [("m0", "ulab", "ulab"), ("m0", "pure", "viper"),
                                                   ("m7", "pure", "viper")])
def test_compressed_decode_in_machine_code_is_the_python_decode(core, firmware, backend):
    """compressed_viper with kernels_asm's affine, where the board uses it: on ulab and on the
    viper backend of stock firmware (tests/test_compressed_viper.py runs it on the desktop)."""
    code = ("import json\nimport microrl\nmicrorl.BACKEND_CHOICE = %r\n" % backend
            + DECODE_SCRIPT % {"env": "pendulum", "capacity": 300, "steps": 450})
    out = run_on(core, _firmware("%s-%s-*.elf" % (core, firmware)), code)
    assert out["replay"] is True  # the machine-code decode is the one in use
    assert out["mismatches"] == 0 and out["draws_equal"] and out["dones"] > 0


TRAIN_SCRIPT = """
import json
import ubinascii
import microrl
microrl.BACKEND_CHOICE = "python"
microrl.ASM_CHOICE = %(asm)r
from microrl.backend import PRODUCTS
from microrl.config import TD3Config
from microrl.train import Trainer
t = Trainer(TD3Config(actor_hidden=(12, 12), critic_hidden=(12, 12), batch_size=16,
                      buffer_capacity=300, replay="compressed", learning_starts=100, seed=3))
for _ in range(%(steps)d):
    t.step()
ag = t.agent
out = {"products": PRODUCTS, "updates": ag.critic_updates}
for name in ("actor", "critic1", "critic2", "actor_target", "critic2_target"):
    out[name] = [ubinascii.hexlify(bytes(p[0])).decode() for p in getattr(ag, name).params]
print(json.dumps(out))
"""


def _floats(hex_tensors):
    values = []
    for text in hex_tensors:
        raw = bytes.fromhex(text)
        values += struct.unpack("<%df" % (len(raw) // 4), raw)
    return values


@pytest.mark.parametrize("core,products,tolerance", [("m0", "thumb", 0.0), ("m7", "vfp", 1e-6)])
def test_pure_python_backend_in_machine_code_trains_as_its_loops(core, products, tolerance):
    firmware = _firmware("%s-pure-*.elf" % core)
    steps = 140  # 100 warm-up steps, then 40 updates
    fast = run_on(core, firmware, TRAIN_SCRIPT % {"asm": True, "steps": steps})
    plain = run_on(core, firmware, TRAIN_SCRIPT % {"asm": False, "steps": steps})
    assert (fast["products"], plain["products"]) == (products, "python")
    assert fast["updates"] == plain["updates"] == 40
    for name in ("actor", "critic1", "critic2", "actor_target", "critic2_target"):
        got, want = _floats(fast[name]), _floats(plain[name])
        assert len(got) == len(want) > 100
        worst = max(abs(a - b) for a, b in zip(got, want))
        assert worst <= tolerance, (name, worst)
        if tolerance == 0.0:
            assert got == want
