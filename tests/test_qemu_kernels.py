"""The machine-code kernels on the QEMU firmware they are written for (skipped without it).

kernels_vfp is Thumb-2 assembler with FPU instructions, so only the Cortex-M7 firmware with ulab
(firmware/build_qemu.sh, from your own micropython and micropython-ulab checkouts) runs it. Give
the directory of the firmware as FIRMWARE_DIR (as for make bench-mcu) to run these tests; CI has
none and skips them.

The products must be ulab's own, bit for bit (ulab's ``dot`` sums each term with a fused
multiply-add on these cores), the bias, gradient accumulation, ReLU and ReLU mask included; the
column sums are sums in row order.
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from microrl_host.board import deploy
from microrl_host.board.qemu import CORES, QemuBoard

FIRMWARE_DIR = os.environ.get("FIRMWARE_DIR")

SCRIPT = """
import json
from ulab import numpy as np
from microrl.backend import PRODUCTS
from microrl import kernels_vfp as V
seed = [12345]
def rnd():
    seed[0] = (seed[0] * 1103515245 + 12345) & 0x7fffffff
    return (seed[0] / 0x7fffffff) * 6 - 3
def mat(r, c, zeros=False):
    m = np.zeros((r, c), dtype=np.float)
    for i in range(r):
        for j in range(c):
            m[i, j] = 0.0 if zeros else rnd()
    return m
def diff(a, b):
    r, c = b.shape
    return sum(1 for i in range(r) for j in range(c) if a[i, j] != b[i, j])
out = {"products": PRODUCTS, "compiled": V.COMPILED, "checked": 0, "bad": {}}
def check(name, got, want):
    out["checked"] += 1
    n = diff(got, want)
    if n:
        out["bad"][name] = out["bad"].get(name, 0) + n
for rows, n, k, m in ((16, 16, 4, 12), (16, 16, 12, 12), (16, 16, 12, 1), (8, 5, 3, 7)):
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


def test_vfp_products_are_ulabs_bit_for_bit_on_the_cortex_m7():
    out = run_on("m7", _firmware("m7-ulab-*.elf"), SCRIPT)
    assert out["compiled"] is True and out["products"] == "vfp"
    assert out["checked"] == 4 * 8
    assert out["bad"] == {}


def test_the_cortex_m0_keeps_ulabs_products():
    out = run_on("m0", _firmware("m0-ulab-*.elf"),
                 "import json\nfrom microrl.backend import PRODUCTS\n"
                 "print(json.dumps({'products': PRODUCTS}))\n")
    assert out == {"products": "ulab"}
