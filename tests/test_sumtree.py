"""K-ary sum tree: sampling distribution, device against mirror bit for bit, bad input, memory.

The device code runs under `micropython` (and under CPython with the pure-Python backend); the
mirror is numpy. Both follow the same float operations in the same order, so in double precision
the whole tree and every sampled index must be equal, not merely close.
"""

import binascii
import math

import numpy as np
import pytest

from devicerun import run_device
from microrl_host.mirror.rng import Rng
from microrl_host.mirror.sumtree import KS, SumTree


def chi2_cdf(x, df):
    """P(chi-square with df degrees of freedom <= x): the regularized lower incomplete gamma
    P(df/2, x/2) by its power series (no scipy in the test requirements)."""
    a, z = df / 2.0, x / 2.0
    term = total = 1.0 / a
    n = 1
    while term > 1e-17 * total:
        term *= z / (a + n)
        total += term
        n += 1
    return math.exp(a * math.log(z) - z - math.lgamma(a)) * total


def chi2_critical_999(df):
    """The 0.999 quantile of chi-square with df degrees of freedom, by bisection on the CDF."""
    lo, hi = 0.0, 10.0 * df + 100.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if chi2_cdf(mid, df) < 0.999 else (lo, mid)
    return 0.5 * (lo + hi)


def chi2_statistic(counts, priorities):
    priorities = np.asarray(priorities, np.float64)
    draws = counts.sum()
    nonzero = priorities > 0
    expected = draws * priorities[nonzero] / priorities.sum()
    return float((((counts[nonzero] - expected) ** 2) / expected).sum()), int(nonzero.sum()) - 1


def test_chi2_critical_matches_table():
    # Printed tables of the 0.999 quantile: df 10 29.588, df 17 40.790, df 50 86.661.
    for df, table in ((10, 29.588), (17, 40.790), (50, 86.661)):
        assert abs(chi2_critical_999(df) - table) < 0.001


def chi_priorities(n):
    """Varied priorities 1..11 with every tenth leaf (from 3) at zero."""
    return [0.0 if i % 10 == 3 else float(1 + (i * 37) % 11) for i in range(n)]


@pytest.mark.parametrize("k", KS)
def test_mirror_sampling_follows_priorities_chi_square(k):
    priorities = chi_priorities(60)
    tree = SumTree(60, k)
    for i, p in enumerate(priorities):
        tree.update(i, p)
    assert tree.total() == sum(priorities)
    draws = tree.sample(Rng(7, k), 30000)  # an independent sample per k
    counts = np.bincount(draws, minlength=60)
    assert counts.sum() == 30000
    assert counts[np.asarray(priorities) == 0].sum() == 0  # zero-priority leaves never drawn
    stat, df = chi2_statistic(counts, priorities)
    critical = chi2_critical_999(df)
    print(f"k={k}: chi-square {stat:.1f}, df {df}, 0.999 critical {critical:.1f}")
    assert df == 53
    assert stat < critical


DEVICE_CHI_SCRIPT = """
from array import array
from microrl.rng import Rng
from microrl.sumtree import SumTree
out = {}
for k in (2, 4, 8, 16):
    tree = SumTree(20, k)
    for i in range(20):
        tree.update(i, 0.0 if i % 10 == 3 else float(1 + (i * 37) % 11))
    draws = array('i', [0] * 4000)
    tree.sample(Rng(11, k), 4000, draws)
    counts = [0] * 20
    for d in draws:
        counts[d] += 1
    out[str(k)] = counts
print(json.dumps(out))
"""


def test_device_sampling_follows_priorities_chi_square():
    out = run_device(DEVICE_CHI_SCRIPT)
    priorities = chi_priorities(20)
    for k in KS:
        counts = np.asarray(out[str(k)])
        assert counts.sum() == 4000
        assert counts[3] == 0 and counts[13] == 0
        stat, df = chi2_statistic(counts, priorities)
        critical = chi2_critical_999(df)
        print(f"device k={k}: chi-square {stat:.1f}, df {df}, 0.999 critical {critical:.1f}")
        assert df == 17
        assert stat < critical


# One scenario, one source, run by the device under MicroPython and by the mirror under CPython,
# with the same draws in the same order: random updates over a capacity that is no power of k, a
# third of the leaves zeroed, more overwrites, draws after each phase. Priorities span 2**-15 ..
# 2**15 and are exact on both sides.
CAPACITY = 1000

SCENARIO = """
def random_updates(tree, rng, count):
    for _ in range(count):
        i = rng.below(tree.capacity)
        if rng.below(10) == 0:
            p = 0.0
        else:
            p = rng.uniform() * 2.0 ** (rng.below(31) - 15)
        tree.update(i, p)

def scenario(SumTree, Rng, k, capacity):
    tree = SumTree(capacity, k)
    rng = Rng(2024, k)
    totals = []
    first = [0] * 500
    second = [0] * 1500
    random_updates(tree, rng, 3000)
    totals.append(tree.total())
    tree.sample(rng, 500, first)
    for i in range(0, capacity, 3):
        tree.update(i, 0.0)
    random_updates(tree, rng, 400)
    totals.append(tree.total())
    tree.sample(rng, 1500, second)
    return tree, totals, [int(i) for i in first + second]
"""

DEVICE_MATCH_SCRIPT = SCENARIO + """
import binascii
from array import array
from microrl.rng import Rng
from microrl.sumtree import SumTree

def hexbits(values):
    return binascii.hexlify(bytes(array('d', values))).decode()

out = {}
for k in (2, 4, 8, 16):
    tree, totals, draws = scenario(SumTree, Rng, k, %d)
    out[str(k)] = {"totals": hexbits(totals), "draws": draws, "nodes": hexbits(tree.nodes)}
print(json.dumps(out))
""" % CAPACITY


def mirror_scenario(k):
    namespace = {}
    exec(SCENARIO, namespace)
    return namespace["scenario"](SumTree, Rng, k, CAPACITY)


def from_hex(text):
    return np.frombuffer(binascii.unhexlify(text), np.float64)


@pytest.fixture(scope="module")
def mirror_runs():
    return {k: mirror_scenario(k) for k in KS}


@pytest.mark.parametrize("engine", ["micropython", "cpython"])
def test_device_matches_mirror_bit_for_bit(engine, mirror_runs):
    backend = "python" if engine == "cpython" else None
    out = run_device(DEVICE_MATCH_SCRIPT, engine=engine, backend=backend)
    for k in KS:
        tree, totals, draws = mirror_runs[k]
        dev = out[str(k)]
        dev_nodes = from_hex(dev["nodes"])
        assert dev_nodes.shape == tree.nodes.shape
        assert np.array_equal(dev_nodes.view(np.uint64), tree.nodes.view(np.uint64))
        assert from_hex(dev["totals"]).tolist() == totals
        assert totals[0] > 0 and totals[1] > 0
        assert dev["draws"] == draws
        leaves = tree.nodes[:CAPACITY]
        assert (leaves[draws[500:]] > 0).all()  # the second draws, from these leaves
        assert (leaves == 0).sum() >= CAPACITY // 4  # the zeroing phase left many zero leaves
        print(f"{engine} k={k}: {tree.nodes.size} nodes equal, totals {totals}, "
              f"{len(draws)} draws equal")


def test_mirror_root_is_sequential_sum_and_batch_updates_agree():
    rng = Rng(5)
    for k in KS:
        single = SumTree(777, k)
        batch = SumTree(777, k)
        # Repeated indices: the last write must win, as with updates one after another.
        indices = rng.below_array(2000, 777)
        priorities = rng.uniform_array(2000) * 1e3
        priorities[::7] = 0.0
        for i, p in zip(indices.tolist(), priorities.tolist()):
            single.update(i, p)
        for start in range(0, 2000, 32):
            batch.update_many(indices[start:start + 32], priorities[start:start + 32])
        assert np.array_equal(single.nodes, batch.nodes)
        # The root is the sequential sum of the top level's children (k of them or fewer).
        top = single._offsets[-2]
        s = 0.0
        for c in single.nodes[top:single._offsets[-1]].tolist():
            s += c
        assert single.total() == s
        assert abs(single.total() - single.nodes[:777].sum()) < 1e-9 * single.total()


def test_mirror_batch_sample_equals_scalar_finds():
    tree = SumTree(300, 4)
    tree.update_many(np.arange(300), [(i % 13) * 0.25 for i in range(300)])
    a, b = Rng(9), Rng(9)
    batch = tree.sample(a, 1000)
    scalar = [tree.find(b.uniform() * tree.total()) for _ in range(1000)]
    assert batch.tolist() == scalar
    assert a.next_u32() == b.next_u32()  # the same numbers consumed


@pytest.mark.parametrize("k", KS)
def test_find_past_the_end_returns_last_nonzero_leaf(k):
    tree = SumTree(50, k)
    for i in range(40):
        tree.update(i, 0.1 * (i + 1))
    tree.update(37, 0.0)
    for u in (tree.total(), tree.total() * (1 + 1e-12), 1e30):
        assert tree.find(u) == 39
    assert tree.find(0.0) == 0
    tree.update(0, 0.0)
    assert tree.find(0.0) == 1


def test_mirror_rejects_bad_input():
    with pytest.raises(ValueError, match="k .*3"):
        SumTree(10, 3)
    with pytest.raises(ValueError, match="capacity"):
        SumTree(0, 4)
    tree = SumTree(10, 4)
    with pytest.raises(ValueError, match="empty"):
        tree.sample(Rng(1), 4)
    with pytest.raises(ValueError, match="empty"):
        tree.find(0.0)
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="priority"):
            tree.update(1, bad)
    for bad in (-1, 10):
        with pytest.raises(ValueError, match="index"):
            tree.update(bad, 1.0)
        with pytest.raises(ValueError, match="index"):
            tree.get(bad)
    with pytest.raises(ValueError, match="index"):
        tree.update_many([1, 10], [1.0, 1.0])
    with pytest.raises(ValueError, match="priority"):
        tree.update_many([1, 2], [1.0, math.nan])
    assert tree.total() == 0.0  # rejected updates changed nothing
    tree.update(2, 1.0)
    with pytest.raises(ValueError, match="u must"):
        tree.find(-0.5)


DEVICE_BAD_INPUT_SCRIPT = """
from microrl.rng import Rng
from microrl.sumtree import SumTree
out = []
def attempt(name, f):
    try:
        f()
        out.append([name, "no error", ""])
    except Exception as e:
        out.append([name, type(e).__name__, str(e)])
tree = SumTree(10, 4)
attempt("k", lambda: SumTree(10, 3))
attempt("capacity", lambda: SumTree(0, 4))
attempt("empty", lambda: tree.sample(Rng(1), 4, [0] * 4))
attempt("empty find", lambda: tree.find(0.0))
attempt("negative", lambda: tree.update(1, -1.0))
attempt("nan", lambda: tree.update(1, float("nan")))
attempt("inf", lambda: tree.update(1, float("inf")))
attempt("index high", lambda: tree.update(10, 1.0))
attempt("index low", lambda: tree.update(-1, 1.0))
attempt("get", lambda: tree.get(10))
out.append(["total", "", repr(tree.total())])
print(json.dumps(out))
"""


def test_device_rejects_bad_input():
    out = run_device(DEVICE_BAD_INPUT_SCRIPT)
    expect = {"k": "k (children", "capacity": "capacity", "empty": "empty", "empty find": "empty",
              "negative": "priority", "nan": "priority", "inf": "priority",
              "index high": "index 10", "index low": "index -1", "get": "index 10"}
    got = {name: (kind, message) for name, kind, message in out}
    for name, word in expect.items():
        kind, message = got[name]
        assert kind == "ValueError", (name, kind, message)
        assert word in message, (name, message)
    assert "3" in got["k"][1]
    assert got["total"][1] == "0.0"


DEVICE_OVERFLOW_SCRIPT = """
from microrl.sumtree import SumTree
tree = SumTree(10, 4)
tree.update(1, 2.0)
try:
    tree.update(1, 1e39)
    message = "no error"
except ValueError as e:
    message = str(e)
print(json.dumps({"message": message, "leaf": tree.get(1), "total": tree.total()}))
"""


def test_device_rejects_priority_too_large_for_float32_storage():
    out = run_device(DEVICE_OVERFLOW_SCRIPT, float_bits=32)
    assert "overflows 32-bit storage" in out["message"]
    assert out["leaf"] == 2.0 and out["total"] == 2.0  # the leaf kept its value


DEVICE_MEMORY_SCRIPT = """
import gc
from array import array
from microrl.backend import STORE_BITS
from microrl.rng import Rng
from microrl.sumtree import SumTree
out = {"store_bits": STORE_BITS}
draws = array('i', [0] * 32)
for k in (2, 4, 8, 16):
    gc.collect()
    empty = gc.mem_alloc()
    tree = SumTree(10000, k)
    gc.collect()
    built = gc.mem_alloc()
    rng = Rng(3)
    for i in range(10000):
        tree.update(i, rng.uniform() + 0.001)
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(1000):
        tree.update(rng.below(10000), rng.uniform())
        tree.sample(rng, 32, draws)
    gc.collect()
    after = gc.mem_alloc()
    out[str(k)] = {"tree_bytes": built - empty, "growth": after - before,
                   "nodes": len(tree.nodes)}
    tree = None
print(json.dumps(out))
"""


def test_device_memory_per_leaf_and_no_growth():
    out = run_device(DEVICE_MEMORY_SCRIPT, float_bits=32)
    assert out["store_bits"] == 32
    for k in KS:
        r = out[str(k)]
        per_leaf = r["tree_bytes"] / 10000
        bound = 4 * k / (k - 1) * 1.05 + 0.05  # + 0.05: the object and its tuples, 500 bytes
        print(f"k={k}: {r['nodes']} nodes, {r['tree_bytes']} bytes, {per_leaf:.3f} bytes per "
              f"leaf (bound {bound:.3f}); 1000 updates + 1000 samples of 32 grew the heap "
              f"by {r['growth']} bytes")
        assert r["nodes"] < 10000 * k / (k - 1) + 20
        assert per_leaf < bound
        assert abs(r["growth"]) < 256
