"""Speed of the K-ary sum tree: microseconds per update and per sampled index, k = 2, 4, 8, 16.

For each k a tree of `capacity` leaves is filled with random priorities, then timed `repeats`
times: the device code under the unix `micropython` (one interpreter process runs every k) doing
single `update`s and `sample` in batches of `batch`; and the numpy mirror doing single `update`s,
`update_many` of `batch` leaves and `sample` of `batch`. Reports the median and the range over
the repeats, prints a markdown table and writes bench.json and bench.md.

Each repeat also draws one verification batch from a generator seeded the same way every time:
the benchmark fails when a repeat's indices differ from the first repeat's, or the device's differ
from the mirror's, or the device's root differs from the mirror's (all in float64).
"""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from microrl_host.board.mpy import DEVICE_DIR
from microrl_host.board.vboard import default_micropython
from microrl_host.mirror.rng import Rng
from microrl_host.mirror.sumtree import KS, SumTree

UPDATES = 2000  # timed single updates per repeat
SAMPLE_BATCHES = 100  # timed sample() batches per repeat
FILL_SEED = 1  # Rng(FILL_SEED, k): the fill priorities and the timed updates
CHECK_SEED = 99  # Rng(CHECK_SEED, k): the verification batch of every repeat
TIMED_SEED = 2

# The same scenario as `_mirror_k`, in device code; prints one JSON line per k.
DEVICE_SCRIPT = """
import sys, gc, json, time, binascii
sys.path.insert(0, %(device_dir)r)
from array import array
from microrl.backend import STORE_BITS
from microrl.rng import Rng
from microrl.sumtree import SumTree
CAPACITY, BATCH, REPEATS = %(capacity)d, %(batch)d, %(repeats)d
UPDATES, SAMPLE_BATCHES = %(updates)d, %(sample_batches)d
ticks, diff = time.ticks_us, time.ticks_diff
for k in (2, 4, 8, 16):
    gc.collect()
    heap0 = gc.mem_alloc()
    tree = SumTree(CAPACITY, k)
    gc.collect()
    tree_bytes = gc.mem_alloc() - heap0
    rng = Rng(%(fill_seed)d, k)
    for i in range(CAPACITY):
        tree.update(i, rng.uniform() + 0.001)
    idx = array('i', [0] * UPDATES)
    pri = array('d', [0.0] * UPDATES)
    for j in range(UPDATES):
        idx[j] = rng.below(CAPACITY)
        pri[j] = rng.uniform() + 0.001
    out = array('i', [0] * BATCH)
    update_us, sample_us, checks = [], [], []
    for r in range(REPEATS):
        t0 = ticks()
        for j in range(UPDATES):
            tree.update(idx[j], pri[j])
        update_us.append(diff(ticks(), t0) / UPDATES)
        srng = Rng(%(timed_seed)d, k)
        t0 = ticks()
        for _ in range(SAMPLE_BATCHES):
            tree.sample(srng, BATCH, out)
        sample_us.append(diff(ticks(), t0) / (SAMPLE_BATCHES * BATCH))
        tree.sample(Rng(%(check_seed)d, k), BATCH, out)
        checks.append(list(out))
    print(json.dumps({"k": k, "update_us": update_us, "sample_us": sample_us, "checks": checks,
                      "total_hex": binascii.hexlify(bytes(array('d', [tree.total()]))).decode(),
                      "tree_bytes": tree_bytes,
                      "store_bits": STORE_BITS}))
"""


def _spread(values):
    """(median, min, max) of a list of numbers."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _fill_mirror(k, capacity):
    """The device script's tree and timed updates, on the mirror."""
    tree = SumTree(capacity, k)
    rng = Rng(FILL_SEED, k)
    for i in range(capacity):
        tree.update(i, rng.uniform() + 0.001)
    idx = np.zeros(UPDATES, np.int64)
    pri = np.zeros(UPDATES, np.float64)
    for j in range(UPDATES):
        idx[j] = rng.below(capacity)
        pri[j] = rng.uniform() + 0.001
    return tree, idx, pri


def _mirror_k(k, capacity, batch, repeats):
    """One k on the mirror; returns (run, result)."""
    tree, idx, pri = _fill_mirror(k, capacity)
    idx_list, pri_list = idx.tolist(), pri.tolist()
    update_us, many_us, sample_us, checks = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for i, p in zip(idx_list, pri_list):
            tree.update(i, p)
        update_us.append((time.perf_counter_ns() - t0) / 1e3 / UPDATES)
        t0 = time.perf_counter_ns()
        for start in range(0, UPDATES, batch):  # the same sequence, so the same leaves after
            tree.update_many(idx[start:start + batch], pri[start:start + batch])
        many_us.append((time.perf_counter_ns() - t0) / 1e3 / UPDATES)
        srng = Rng(TIMED_SEED, k)
        t0 = time.perf_counter_ns()
        for _ in range(SAMPLE_BATCHES):
            tree.sample(srng, batch)
        sample_us.append((time.perf_counter_ns() - t0) / 1e3 / (SAMPLE_BATCHES * batch))
        checks.append(tree.sample(Rng(CHECK_SEED, k), batch).tolist())
    run = {"side": "mirror", "k": k, "capacity": capacity, "batch": batch}
    result = {"update_us": _spread(update_us), "update_many_us_per_leaf": _spread(many_us),
              "sample_us_per_index": _spread(sample_us), "check": checks[0],
              "total": tree.total(), "nodes": int(tree.nodes.size)}
    _check_repeats("mirror", k, checks)
    return run, result


def _check_repeats(side, k, checks):
    for r, check in enumerate(checks):
        if check != checks[0]:
            raise RuntimeError(f"{side} k={k}: repeat {r} drew {check[:8]}..., repeat 0 drew "
                               f"{checks[0][:8]}... from the same generator")


def _device_runs(micropython, capacity, batch, repeats, log):
    """Every k on the device code under `micropython`; yields (run, result) per k."""
    script = DEVICE_SCRIPT % {
        "device_dir": str(DEVICE_DIR), "capacity": capacity, "batch": batch,
        "repeats": repeats, "updates": UPDATES, "sample_batches": SAMPLE_BATCHES,
        "fill_seed": FILL_SEED, "timed_seed": TIMED_SEED, "check_seed": CHECK_SEED}
    env = dict(os.environ)
    env.pop("MICRORL_BACKEND", None)
    env.pop("MICRORL_FLOAT_BITS", None)
    proc = subprocess.Popen([micropython, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        doc = json.loads(line)
        _check_repeats("device", doc["k"], doc["checks"])
        run = {"side": "device", "k": doc["k"], "capacity": capacity, "batch": batch}
        result = {"update_us": _spread(doc["update_us"]),
                  "sample_us_per_index": _spread(doc["sample_us"]), "check": doc["checks"][0],
                  "total": float(np.frombuffer(bytes.fromhex(doc["total_hex"]), np.float64)[0]),
                  "tree_bytes": doc["tree_bytes"],
                  "store_bits": doc["store_bits"]}
        log(f"device k={doc['k']}: update {result['update_us']['median']:.2f} us, sample "
            f"{result['sample_us_per_index']['median']:.2f} us per index")
        yield run, result
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise RuntimeError(f"device benchmark failed under {micropython}:\n{err[-3000:]}")


def run_bench_sumtree(out_dir, capacity=10000, batch=32, repeats=5, micropython=None,
                      log=print):
    """Benchmark device and mirror for every k; writes bench.json and bench.md, returns the doc."""
    if not 1 <= batch <= UPDATES:
        raise ValueError(f"batch must be in [1, {UPDATES}], got {batch}")
    micropython = micropython or default_micropython()
    device = {run["k"]: (run, result)
              for run, result in _device_runs(micropython, capacity, batch, repeats, log)}
    if sorted(device) != list(KS):
        raise RuntimeError(f"device benchmark reported k = {sorted(device)}, expected {KS}")
    mirror = {}
    for k in KS:
        mirror[k] = _mirror_k(k, capacity, batch, repeats)
        result = mirror[k][1]
        log(f"mirror k={k}: update {result['update_us']['median']:.2f} us, sample "
            f"{result['sample_us_per_index']['median']:.2f} us per index")
        dev = device[k][1]
        if dev["store_bits"] != 64:
            log(f"k={k}: device stores {dev['store_bits']}-bit floats, not compared with the "
                f"float64 mirror")
        elif dev["check"] != result["check"] or dev["total"] != result["total"]:
            raise RuntimeError(f"k={k}: device and mirror differ: totals {dev['total']!r} and "
                               f"{result['total']!r}, indices {dev['check'][:8]}... and "
                               f"{result['check'][:8]}...")
    doc = {"capacity": capacity, "batch": batch, "repeats": repeats, "updates": UPDATES,
           "sample_batches": SAMPLE_BATCHES, "micropython": os.path.basename(micropython),
           "runs": [{**run, **result} for k in KS for run, result in (device[k], mirror[k])]}
    table = markdown_table(doc)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "bench.json"), "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(out_dir, "bench.md"), "w") as f:
        f.write(table)
    return doc, table


def _cell(spread):
    return f"{spread['median']:.2f} ({spread['min']:.2f}-{spread['max']:.2f})"


def markdown_table(doc):
    """The results as a markdown table: median (min-max) microseconds over the repeats."""
    lines = [
        f"K-ary sum tree, {doc['capacity']} leaves, batch {doc['batch']}: microseconds, median "
        f"(min-max) of {doc['repeats']} repeats",
        "",
        "| k | device update | device sample, per index | device bytes per leaf "
        "| mirror update | mirror update_many, per leaf | mirror sample, per index |",
        "|---|---|---|---|---|---|---|",
    ]
    by_k = {}
    for r in doc["runs"]:
        by_k.setdefault(r["k"], {})[r["side"]] = r
    for k in sorted(by_k):
        d, m = by_k[k]["device"], by_k[k]["mirror"]
        lines.append(f"| {k} | {_cell(d['update_us'])} | {_cell(d['sample_us_per_index'])} "
                     f"| {d['tree_bytes'] / doc['capacity']:.2f} ({d['store_bits']}-bit) "
                     f"| {_cell(m['update_us'])} | {_cell(m['update_many_us_per_leaf'])} "
                     f"| {_cell(m['sample_us_per_index'])} |")
    return "\n".join(lines) + "\n"


def add_arguments(parser):
    parser.add_argument("--capacity", type=int, default=10000, help="leaves (default 10000)")
    parser.add_argument("--batch", type=int, default=32, help="indices per sample (default 32)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    parser.add_argument("--micropython", default=None,
                        help="MicroPython binary (default: the one beside this Python or on PATH)")
    parser.add_argument("--out", default="runs/bench-sumtree", help="output directory")
    parser.add_argument("--json", action="store_true", help="print bench.json to stdout")


def run(args):
    def log(text):
        print(text, file=sys.stderr, flush=True)

    doc, table = run_bench_sumtree(args.out, args.capacity, args.batch, args.repeats,
                                   args.micropython, log)
    if args.json:
        print(json.dumps(doc, indent=1))
    else:
        print(table, end="")
    log(f"wrote {args.out}/bench.json and bench.md")
    return 0
