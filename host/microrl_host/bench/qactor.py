"""Acting cost of the int8 actor against the float actor, and the largest action difference.

Actors: random initialisations (`MLP` from `Rng(seed)`) of 3x64x64x1 and 3x32x32x1, and with
`--weights FILE` a trained one from actor.json. For each:
- the device code under MicroPython (`--micropython PATH`, default the unix interpreter; the
  backend is whatever the interpreter has, pure Python without ulab): microseconds per
  `QActor.policy` and per float actor step as `TD3.policy` takes it (set the (1, 3) input, forward,
  read), and per `QActor.refresh`;
- the numpy mirror: microseconds per `QActor.policy` and per `actor.forward(obs, 1)`, what
  `TD3.act` calls;
- the largest |int8 action - float action| over 10 000 observations: cos and sin of an angle
  uniform in [-pi, pi), thdot uniform in [-8, 8].
Medians and ranges over `repeats` runs. The benchmark fails when a run's actions differ from the
first run's, when the device's int8 actions differ from the mirror's (bit for bit on a float64
interpreter), or, on a ulab interpreter, when the pure-Python forward differs from the ulab one.
Writes qactor.json and qactor.md to `--out`.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from microrl_host.board.mpy import DEVICE_DIR
from microrl_host.board.vboard import default_micropython
from microrl_host.mirror.mlp import MLP
from microrl_host.mirror.qactor import QActor
from microrl_host.mirror.rng import Rng
from microrl_host.progress import Progress
from microrl_host.sim.export import ExportError, float_actions, load_actor, random_observations

OBSERVATIONS = 10000
OBS_SEED = 0
INIT_SEED = 1
TIMED_CALLS = 500  # policy calls per timed run
HEAP_BYTES = 2 * 1024 * 1024  # the unix port's default heap

# Device code: `load_actor(sizes, path)`, a float actor with the weights `write_weights` wrote.
DEVICE_LOAD_ACTOR = """
from array import array
from microrl.backend import K
from microrl.mlp import MLP


def load_actor(sizes, path):
    with open(path, "rb") as f:
        flat = array("d", f.read())
    actor = MLP(sizes, "tanh", 1)
    at = 0
    for m in actor.params:
        rows, cols = K.shape(m)
        for i in range(rows):
            for j in range(cols):
                K.set(m, i, j, flat[at])
                at += 1
    return actor
"""

# Runs under MicroPython with the device package on its path; prints one JSON line.
DEVICE_SCRIPT = """
import sys, gc, json
sys.path.insert(0, %(device_dir)r)
""" + DEVICE_LOAD_ACTOR + """
from microrl import backend
from microrl.clock import ticks_diff, ticks_us
from microrl import qactor
SIZES, N, REPEATS, CALLS = tuple(%(sizes)r), %(count)d, %(repeats)d, %(calls)d
with open(%(obs)r, "rb") as f:
    obs_flat = array("d", f.read())
actor = load_actor(SIZES, %(weights)r)
qa = qactor.QActor(SIZES)
row = K.matrix(1, 3)
# Few live objects: a heap full of them makes every collection, and so every allocating call
# (ulab's temporaries, float boxes), slower than on a board.
obs = [array("d", obs_flat[3 * i:3 * i + 3]) for i in range(CALLS)]
o = array("d", [0.0, 0.0, 0.0])

def float_policy(o):
    for j in range(3):
        K.set(row, 0, j, o[j])
    return K.get(actor.forward(row, 1), 0, 0)

refresh_us, int8_us, float_us, int8_sums, float_sums = [], [], [], [], []
for r in range(REPEATS):
    gc.collect()
    t0 = ticks_us()
    qa.refresh(actor)
    refresh_us.append(ticks_diff(ticks_us(), t0))
    for policy, times, sums in ((qa.policy, int8_us, int8_sums),
                                (float_policy, float_us, float_sums)):
        gc.collect()
        s = 0.0
        t0 = ticks_us()
        for i in range(CALLS):
            s += policy(obs[i])
        times.append(ticks_diff(ticks_us(), t0) / CALLS)
        sums.append(s)
# Results go straight into arrays: a growing list of kept float boxes, each left between a call's
# temporaries, would fragment the heap until the list cannot grow.
int8_actions = array("d", bytes(8 * N))
float_actions = array("d", bytes(8 * N))
for i in range(N):
    o[0], o[1], o[2] = obs_flat[3 * i], obs_flat[3 * i + 1], obs_flat[3 * i + 2]
    int8_actions[i] = qa.policy(o)
    float_actions[i] = float_policy(o)
py_vs_nd = None
if backend.NAME != "python":  # the pure-Python forward on the same integers, for comparison
    layers = []
    for w, s_w, b, n_in, n_out, q in qa.layers:
        wp = array("b", bytes(n_in * n_out))
        bp = array(qactor.FLOAT_TYPECODE, [0.0] * n_out)
        for i in range(n_in):
            for j in range(n_out):
                wp[i * n_out + j] = int(w[i, j])
        for j in range(n_out):
            bp[j] = float(b[0, j])
        layers.append([wp, s_w, bp, n_in, n_out, q])
    width = max(SIZES)
    xq, acc, h = [0] * width, [0] * width, array(qactor.FLOAT_TYPECODE, [0.0] * width)
    py_vs_nd = 0.0
    for i in range(N):
        o[0], o[1], o[2] = obs_flat[3 * i], obs_flat[3 * i + 1], obs_flat[3 * i + 2]
        d = abs(qactor.forward_py(layers, o, xq, acc, h)[0] - int8_actions[i])
        if d > py_vs_nd:
            py_vs_nd = d
for path, values in ((%(int8_out)r, int8_actions), (%(float_out)r, float_actions)):
    with open(path, "wb") as f:
        f.write(values)
print(json.dumps({"backend": backend.NAME, "float_bits": backend.FLOAT_BITS,
                  "store_bits": backend.STORE_BITS, "refresh_us": refresh_us,
                  "int8_us": int8_us, "float_us": float_us, "int8_sums": int8_sums,
                  "float_sums": float_sums, "py_vs_nd": py_vs_nd}))
"""


class BenchError(Exception):
    """A run that did not reproduce, or two sides that disagree."""


def _spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def random_actor(hidden, seed=INIT_SEED):
    """(sizes, [W1, b1, ...]) of an actor initialised like the learner's from Rng(seed)."""
    sizes = (3, hidden, hidden, 1)
    return sizes, MLP(sizes, "tanh", 1, Rng(seed)).get_weights()


def write_weights(path, params):
    """[W1, b1, ...] as one float64 little-endian file, row-major: what `load_actor` reads."""
    np.concatenate([np.ravel(p) for p in params]).astype("<f8").tofile(path)
    return str(path)


def _mirror_actor(sizes, params):
    actor = MLP(sizes, "tanh", 1)
    actor.set_weights(params)
    return actor


def run_device(sizes, params, obs, repeats, micropython):
    """The device side of one actor; returns the script's JSON plus the actions as arrays."""
    with tempfile.TemporaryDirectory(prefix="bench-qactor-") as tmp:
        tmp = Path(tmp)
        obs.astype("<f8").tofile(tmp / "obs.bin")
        script = DEVICE_SCRIPT % {"device_dir": str(DEVICE_DIR), "sizes": list(sizes),
                                  "count": len(obs), "repeats": repeats, "calls": TIMED_CALLS,
                                  "weights": write_weights(tmp / "weights.bin", params),
                                  "obs": str(tmp / "obs.bin"),
                                  "int8_out": str(tmp / "int8.bin"),
                                  "float_out": str(tmp / "float.bin")}
        (tmp / "bench.py").write_text(script)
        env = dict(os.environ)
        env.pop("MICRORL_BACKEND", None)
        env.pop("MICRORL_FLOAT_BITS", None)
        cmd = [micropython, "-X", "heapsize=%d" % HEAP_BYTES, str(tmp / "bench.py")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env)
        if proc.returncode == 0:
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            out["int8"] = np.fromfile(tmp / "int8.bin", "<f8")
            out["float"] = np.fromfile(tmp / "float.bin", "<f8")
    if proc.returncode != 0:
        raise BenchError("device run failed:\n%s\n%s" % (proc.stdout[-2000:], proc.stderr[-2000:]))
    return out


def run_mirror(sizes, params, obs, repeats):
    """The mirror side of one actor: timings and the actions over every observation."""
    actor = _mirror_actor(sizes, params)
    qa = QActor(sizes)
    refresh_us, int8_us, float_us, int8_sums, float_sums = [], [], [], [], []
    rows = [np.array(o) for o in obs[:TIMED_CALLS]]
    one = np.zeros((1, 3))

    def float_policy(o):
        one[0] = o
        return float(actor.forward(one, 1)[0, 0])

    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        qa.refresh(actor)
        refresh_us.append((time.perf_counter_ns() - t0) / 1e3)
        for policy, times, sums in ((qa.policy, int8_us, int8_sums),
                                    (float_policy, float_us, float_sums)):
            t0 = time.perf_counter_ns()
            s = 0.0
            for o in rows:
                s += policy(o)
            times.append((time.perf_counter_ns() - t0) / 1e3 / len(rows))
            sums.append(s)
    return {"refresh_us": refresh_us, "int8_us": int8_us, "float_us": float_us,
            "int8_sums": int8_sums, "float_sums": float_sums,
            "int8": np.array([qa.policy(o) for o in obs]),
            "float": float_actions(sizes, params, obs)[:, 0]}


def bench_actor(name, sizes, params, obs, repeats, micropython):
    """(run, result) for one actor, after checking reproducibility and device == mirror."""
    device = run_device(sizes, params, obs, repeats, micropython)
    mirror = run_mirror(sizes, params, obs, repeats)
    for side, out in (("device", device), ("mirror", mirror)):
        for key in ("int8_sums", "float_sums"):
            if len(set(out[key])) != 1:
                raise BenchError("%s %s: runs gave different actions: %r" % (name, side, out[key]))
    device_vs_mirror = float(np.max(np.abs(device["int8"] - mirror["int8"])))
    if device["float_bits"] == 64 and device_vs_mirror != 0.0:
        raise BenchError("%s: device and mirror int8 actions differ by up to %.3g"
                         % (name, device_vs_mirror))
    if device["py_vs_nd"] not in (None, 0.0):
        raise BenchError("%s: on %s the pure-Python forward differs from the ulab one by %.3g"
                         % (name, device["backend"], device["py_vs_nd"]))
    run = {"actor": name, "sizes": list(sizes), "observations": len(obs),
           "calls_per_run": TIMED_CALLS, "repeats": repeats, "micropython": micropython,
           "backend": device["backend"], "float_bits": device["float_bits"]}
    result = {
        "device_int8_us": _spread(device["int8_us"]),
        "device_float_us": _spread(device["float_us"]),
        "device_refresh_us": _spread(device["refresh_us"]),
        "mirror_int8_us": _spread(mirror["int8_us"]),
        "mirror_float_us": _spread(mirror["float_us"]),
        "mirror_refresh_us": _spread(mirror["refresh_us"]),
        "device_max_action_diff": float(np.max(np.abs(device["int8"] - device["float"]))),
        "mirror_max_action_diff": float(np.max(np.abs(mirror["int8"] - mirror["float"]))),
        "device_vs_mirror_int8": device_vs_mirror,
        "pure_vs_ulab_int8": device["py_vs_nd"],
    }
    return run, result


def markdown(rows):
    lines = ["| actor | backend | device int8 us | device float us | speed-up | refresh us "
             "| mirror int8 us | mirror float us | max action diff |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run, res in rows:
        d8, df = res["device_int8_us"]["median"], res["device_float_us"]["median"]
        lines.append("| %s | %s f%d | %.1f | %.1f | %.2fx | %.0f | %.1f | %.1f | %.2e |" % (
            run["actor"], run["backend"], run["float_bits"], d8, df, df / d8,
            res["device_refresh_us"]["median"], res["mirror_int8_us"]["median"],
            res["mirror_float_us"]["median"], res["device_max_action_diff"]))
    return "\n".join(lines) + "\n"


def run_bench_qactor(out_dir=None, micropython=None, weights=None, repeats=5, hidden=(64, 32),
                     count=OBSERVATIONS):
    micropython = micropython or default_micropython()
    obs = random_observations(count, OBS_SEED)
    actors = [("random %dx%d" % (h, h),) + random_actor(h) for h in hidden]
    if weights:
        sizes, params = load_actor(weights)
        actors.append(("trained %s (%s)" % ("x".join(map(str, sizes[1:-1])), Path(weights).name),
                       sizes, params))
    rows = []
    with Progress(len(actors), "bench-qactor", unit="actor") as bar:
        for name, sizes, params in actors:
            rows.append(bench_actor(name, sizes, params, obs, repeats, micropython))
            bar.write(markdown(rows[-1:]).splitlines()[-1])
            bar.advance()
    table = markdown(rows)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "qactor.json"), "w") as f:
            json.dump([{**run, **res} for run, res in rows], f, indent=1)
        with open(os.path.join(out_dir, "qactor.md"), "w") as f:
            f.write(table)
    return rows, table


def add_arguments(parser):
    parser.add_argument("--micropython", default=None, metavar="PATH",
                        help="MicroPython binary for the device side, e.g. one with ulab "
                             "(default: the unix interpreter)")
    parser.add_argument("--weights", default=None, metavar="FILE",
                        help="also a trained actor from actor.json (what `microrl sim` writes)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--out", default="bench/results", help="where qactor.json and qactor.md go")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args):
    try:
        rows, table = run_bench_qactor(args.out, args.micropython, args.weights, args.repeats)
    except (BenchError, ExportError, ValueError, OSError) as e:
        print("microrl bench-qactor: error: %s" % e, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{**r, **s} for r, s in rows]))
    else:
        print()
        print(table, end="")
    return 0
