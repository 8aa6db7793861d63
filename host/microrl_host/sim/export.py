"""`microrl export`: a trained actor as a standalone int8 `policy.py` that runs on a bare board.

Input: the float actor weights of a finished run: `actor.json` (written by `microrl sim` next to
run.json; format below), or a board's weights file `actor.bin` (what `microrl pull` fetches; the
blob of device/microrl/weights.py, float32 or float64), told apart by its first bytes. Output:
`policy.py` with the int8 weights embedded as bytes literals and the forward of the learner's int8
acting actor (`device/microrl/qactor.py`, copied verbatim), so the exported policy acts exactly as
the learner's `QActor` would on the same weights. `--mpy` also writes `policy.mpy`. Everything is validated first and written through a temporary directory:
bad input leaves nothing behind.

actor.json: `{"kind": "microrl-actor", "version": 1, "env": "pendulum", "sizes": [3, h1, ..., 1],
"output_activation": "tanh", "params": [W1, b1, W2, b2, ...]}`, each W the (in, out) matrix
row-major as one flat list, each b a list of `out` floats. `env` (default "pendulum") names the
built-in environment the actor acts in: its obs_dim inputs and act_dim outputs are checked. A
board's actor.bin does not name it: `--env` does (default pendulum), and from Python `dims=(obs_dim,
act_dim)` exports the actor of an environment of one's own.
"""

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from microrl_host.board import blobs, mpy
from microrl_host.mirror.qactor import QActor

KIND = "microrl-actor"
FORMAT_VERSION = 1
QACTOR_SOURCE = mpy.PACKAGE_DIR / "qactor.py"
_BEGIN = "# --- forward: begin"
_END = "# --- forward: end ---"
_BYTES_PER_LINE = 48


class ExportError(Exception):
    """Input that cannot be exported; the message names the problem."""


def actor_document(sizes, params, env="pendulum"):
    """The actor.json object of an actor with these sizes and [W1, b1, ...] (any array-likes)."""
    return {"kind": KIND, "version": FORMAT_VERSION, "env": env, "sizes": [int(s) for s in sizes],
            "output_activation": "tanh",
            "params": [np.asarray(p, np.float64).ravel().tolist() for p in params]}


def save_actor(path, sizes, params, env="pendulum"):
    """Write actor.json atomically (a temporary file renamed over the target)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(actor_document(sizes, params, env)))
    os.replace(tmp, path)


def environment(name):
    """The built-in environment ``name`` (ExportError when there is none)."""
    from microrl_host.mirror.envs import make
    try:
        return make(name)
    except ValueError as e:
        raise ExportError(str(e)) from None


def _check_actor(path, sizes, output_activation, env, dims):
    """The actor must map obs_dim inputs to act_dim tanh outputs of ``dims`` or of ``env``."""
    obs_dim, act_dim = dims if dims is not None else (env.obs_dim, env.act_dim)
    what = "an actor of %d inputs, %d outputs" % (obs_dim, act_dim) if dims is not None else \
        "a %s actor" % type(env).__name__.lower()
    if sizes[0] != obs_dim or sizes[-1] != act_dim or output_activation != "tanh":
        raise ExportError("%s: not %s: needs %d inputs, %d tanh output%s, got sizes %r and output %r"
                          % (path, what, obs_dim, act_dim, "" if act_dim == 1 else "s", sizes,
                             output_activation))


def load_board_actor(path, data, env_name="pendulum", dims=None):
    """(sizes, params) from the bytes of a board's weights file (ReLU hidden layers, tanh output,
    as every microrl actor); ExportError when they are not a whole blob of this learner's actor."""
    try:
        sizes, params, _ = blobs.parse_weights(data)
    except blobs.FormatError as e:
        raise ExportError("%s: %s" % (path, e)) from None
    _check_actor(path, list(sizes), "tanh", None if dims else environment(env_name), dims)
    for k, a in enumerate(params):
        if not np.all(np.isfinite(a)):
            raise ExportError("%s: %s%d holds a value that is not finite"
                              % (path, "Wb"[k % 2], k // 2 + 1))
    return sizes, params


def load_actor(path, env_name=None, dims=None):
    """(sizes, [W1 (in, out), b1 (out,), ...] as float64 arrays) from actor.json or a board's
    actor.bin; ExportError on anything that is not a well-formed actor of this learner for the
    environment ``env_name`` (default: actor.json's, else the pendulum) or of ``dims``."""
    path = Path(path)
    if not path.is_file():
        raise ExportError("no actor weights file %s" % path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ExportError("cannot read %s: %s" % (path, e)) from None
    if data[:4] == blobs.WEIGHTS_MAGIC:
        return load_board_actor(path, data, env_name or "pendulum", dims)
    try:
        doc = json.loads(data.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError("%s is not JSON (nor a board's weights file, which starts with %r): %s"
                          % (path, blobs.WEIGHTS_MAGIC, e)) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ExportError("%s is not an actor weights file (expected \"kind\": \"%s\")"
                          % (path, KIND))
    if doc.get("version") != FORMAT_VERSION:
        raise ExportError("%s: unsupported version %r (this tool reads %d)"
                          % (path, doc.get("version"), FORMAT_VERSION))
    sizes = doc.get("sizes")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or any(not isinstance(s, int) or isinstance(s, bool) or s <= 0 for s in sizes)):
        raise ExportError("%s: sizes must be a list of at least two positive integers, got %r"
                          % (path, sizes))
    name = env_name or doc.get("env", "pendulum")
    _check_actor(path, sizes, doc.get("output_activation"),
                 None if dims else environment(name if isinstance(name, str) else repr(name)), dims)
    params = doc.get("params")
    if not isinstance(params, list) or len(params) != 2 * (len(sizes) - 1):
        raise ExportError("%s: params must hold %d arrays (W and b of %d layers), got %s"
                          % (path, 2 * (len(sizes) - 1), len(sizes) - 1,
                             len(params) if isinstance(params, list) else type(params).__name__))
    arrays = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        for name, shape, flat in (("W%d" % (k + 1), (n_in, n_out), params[2 * k]),
                                  ("b%d" % (k + 1), (n_out,), params[2 * k + 1])):
            count = math.prod(shape)
            if (not isinstance(flat, list) or len(flat) != count
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                               for v in flat)):
                raise ExportError("%s: %s must be a list of %d numbers (shape %s), got %s"
                                  % (path, name, count, "x".join(map(str, shape)),
                                     "%d items" % len(flat) if isinstance(flat, list)
                                     else type(flat).__name__))
            a = np.asarray(flat, np.float64).reshape(shape)
            if not np.all(np.isfinite(a)):
                raise ExportError("%s: %s holds a value that is not finite" % (path, name))
            arrays.append(a)
    return tuple(sizes), arrays


def _document_env(path):
    """The environment actor.json names (the pendulum for a board's actor.bin or none named)."""
    data = Path(path).read_bytes()
    if data[:4] == blobs.WEIGHTS_MAGIC:
        return "pendulum"
    name = json.loads(data.decode()).get("env", "pendulum")
    return name if isinstance(name, str) else repr(name)


def quantize(sizes, params):
    """The mirror QActor holding these float weights, quantized."""
    qa = QActor(sizes)
    for k in range(len(sizes) - 1):
        qa.set_layer(k, params[2 * k], params[2 * k + 1])
    return qa


def forward_source():
    """The shared block of device/microrl/qactor.py: the forward the exported policy runs."""
    text = QACTOR_SOURCE.read_text()
    start = text.index(_BEGIN)
    start = text.index("\n", start) + 1
    return text[start:text.index(_END)].rstrip() + "\n"


def _bytes_literal(name, data, comment):
    lines = ["%s = (  # %s, %d bytes" % (name, comment, len(data))]
    for i in range(0, len(data), _BYTES_PER_LINE):
        lines.append("    %r" % bytes(data[i:i + _BYTES_PER_LINE]))
    if not data:
        lines.append("    b\"\"")
    lines.append(")")
    return "\n".join(lines) + "\n"


_TEMPLATE_HEAD = '''"""Int8 {task} policy, written by `microrl export` from {source}.

Actor {shape}: int8 weights with one float scale a layer, float biases, integer activations
({weight_bytes} bytes of weights). Standalone: needs neither the microrl package nor anything but
MicroPython's builtins (or CPython). Acts exactly as the learner's int8 acting actor (microrl's
`QActor`) on the same weights; within {max_diff:.1e} of the float actor over 10 000 random
observations.

On a board: copy this file (or policy.mpy from `microrl export --mpy`) to the board's filesystem,
e.g. `mpremote cp policy.py :`, then

    import policy
{usage}
With ulab in the firmware the dot products run in ulab's `dot` (the same result, bit for bit:
each one is an integer below 2**24, exact in float32), otherwise in pure Python; neither allocates
anything that lasts beyond a call.
"""

import struct

SIZES = {sizes!r}
'''

_TEMPLATE_TAIL = '''

try:
    from ulab import numpy as _np
except ImportError:  # no ulab: pure Python
    _np = None
if _np is not None and not hasattr(_np, "frombuffer"):
    _np = None  # an old ulab: pure Python gives the same numbers


def _load():
    layers = []
    w_at = 0
    b_at = 0
    for k in range(len(SIZES) - 1):
        n_in, n_out = SIZES[k], SIZES[k + 1]
        scale = struct.unpack_from("<d", _SCALES, 8 * k)[0]
        if _np is None:
            w = array("b", _WEIGHTS[w_at:w_at + n_in * n_out])
            b = array(FLOAT_TYPECODE, [struct.unpack_from("<d", _BIASES, 8 * (b_at + j))[0]
                                       for j in range(n_out)])
        else:
            w = _np.frombuffer(_WEIGHTS, dtype=_np.int8, count=n_in * n_out,
                               offset=w_at).reshape((n_in, n_out))
            b = _np.zeros((1, n_out))
            for j in range(n_out):
                b[0, j] = struct.unpack_from("<d", _BIASES, 8 * (b_at + j))[0]
        layers.append([w, scale, b, n_in, n_out, levels(n_in)])
        w_at += n_in * n_out
        b_at += n_out
    return layers


_layers = _load()
if _np is None:
    del _WEIGHTS  # copied into the layers' arrays
_width = max(SIZES)
_xq = [0] * _width
_acc = [0] * _width
_h = array(FLOAT_TYPECODE, [0.0] * _width)
_obs = array(FLOAT_TYPECODE, [0.0] * SIZES[0])
_xq_row = None if _np is None else _np.zeros((1, SIZES[0]))


def actions(obs):
    """The SIZES[-1] normalised actions in [-1, 1] for an observation of SIZES[0] floats (any
    indexable): the first SIZES[-1] entries of an array the next call overwrites."""
    if _np is None:
        return forward_py(_layers, obs, _xq, _acc, _h)
    return forward_nd(_np, _layers, obs, _xq, _xq_row, _h)


def policy(obs):
    """The first normalised action in [-1, 1] (the action of a one-action actor)."""
    return actions(obs)[0]
'''

_PENDULUM_TAIL = '''

def act(cos, sin, thdot):
    """The normalised action in [-1, 1] at angle th (given as cos th, sin th) and velocity thdot."""
    o = _obs
    o[0] = cos
    o[1] = sin
    o[2] = thdot
    return policy(o)
'''


_PENDULUM_USAGE = """    a = policy.act(cos_th, sin_th, thdot)  # normalised action in [-1, 1]
    torque_nm = 2.0 * a                    # Pendulum-v1: torque = action * 2 N m
    a = policy.policy(obs)                 # the same for obs = [cos th, sin th, thdot]
"""
_USAGE = """    a = policy.actions(obs)  # obs: {obs_dim} floats; a[:{act_dim}]: normalised actions in [-1, 1]
    a0 = policy.policy(obs)  # the first action alone
"""


def _pendulum_shaped(sizes):
    return sizes[0] == 3 and sizes[-1] == 1


def policy_source(qa, source_name, max_diff, task="pendulum swing-up"):
    """The text of policy.py for a quantized mirror QActor."""
    weights = b"".join(w.astype(np.int8).tobytes() for w in qa.weights_q)
    scales = struct.pack("<%dd" % len(qa.scales), *qa.scales)
    biases = b"".join(struct.pack("<%dd" % len(b), *b.tolist()) for b in qa.biases)
    pendulum = _pendulum_shaped(qa.sizes) and task.startswith("pendulum")
    usage = _PENDULUM_USAGE if pendulum else _USAGE.format(obs_dim=qa.sizes[0],
                                                             act_dim=qa.sizes[-1])
    head = _TEMPLATE_HEAD.format(source=source_name, shape="x".join(map(str, qa.sizes)),
                                 weight_bytes=len(weights), max_diff=max_diff,
                                 sizes=tuple(qa.sizes), task=task, usage=usage)
    return (head
            + _bytes_literal("_SCALES", scales, "float64 little-endian, one a layer")
            + _bytes_literal("_BIASES", biases, "float64 little-endian, layer after layer")
            + _bytes_literal("_WEIGHTS", weights, "int8, layer after layer, (in, out) row-major")
            + "\n" + forward_source() + _TEMPLATE_TAIL + (_PENDULUM_TAIL if pendulum else ""))


def random_observations(count, seed=0, env=None, obs_dim=3):
    """(count, obs_dim) float64 observations: for the pendulum (the default) [cos th, sin th,
    thdot], th uniform in [-pi, pi), thdot in [-8, 8]; else uniform within `env`'s obs_low and
    obs_high, or in [-1, 1] without an environment."""
    rng = np.random.default_rng(seed)
    if env is None and obs_dim == 3 or type(env).__name__ == "Pendulum":
        th = rng.uniform(-math.pi, math.pi, count)
        return np.stack([np.cos(th), np.sin(th), rng.uniform(-8.0, 8.0, count)], axis=1)
    low, high = (env.obs_low, env.obs_high) if env is not None else (-1.0, 1.0)
    return rng.uniform(low, high, (count, obs_dim))


def float_actions(sizes, params, obs):
    """The float actor's actions (count, act_dim) for the rows of `obs` (ReLU hidden, tanh out)."""
    h = obs
    for k in range(len(sizes) - 1):
        h = h @ params[2 * k] + params[2 * k + 1]
        h = np.maximum(h, 0.0) if k < len(sizes) - 2 else np.tanh(h)
    return h


def float_difference(sizes, params, qa, count=10000, seed=0, env=None):
    """Largest |int8 action - float action| over `count` random observations."""
    obs = random_observations(count, seed, env, sizes[0])
    return max(float(np.max(np.abs(qa.actions(o) - a)))
               for o, a in zip(obs, float_actions(sizes, params, obs)))


def export(weights_path, out_dir, compile_mpy=False, source_name=None, env_name=None, dims=None):
    """Write policy.py (and policy.mpy) for the actor in `weights_path`; returns a summary dict.
    ``env_name``: the built-in environment it acts in (default: actor.json's, or the pendulum);
    ``dims``: (obs_dim, act_dim) of an environment of one's own instead."""
    sizes, params = load_actor(weights_path, env_name, dims)
    env = None
    if dims is None:
        name = env_name or _document_env(weights_path)
        env = environment(name)
    qa = quantize(sizes, params)
    max_diff = float_difference(sizes, params, qa, env=env)
    task = "pendulum swing-up" if type(env).__name__ == "Pendulum" else (
        "%s" % type(env).__name__.lower() if env is not None else "%d-input, %d-action" % dims)
    text = policy_source(qa, source_name or Path(weights_path).name, max_diff, task)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError("--out %s exists and is not a directory" % out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        (tmp / "policy.py").write_text(text)
        names = ["policy.py"]
        if compile_mpy:
            cmd = mpy.mpy_cross_command() + ["-o", str(tmp / "policy.mpy"), str(tmp / "policy.py")]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise ExportError("mpy-cross failed: %s" % proc.stderr.strip())
            names.append("policy.mpy")
        for name in names:
            os.replace(tmp / name, out_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = [out_dir / name for name in names]
    return {"sizes": list(sizes), "files": [str(f) for f in files],
            "bytes": {f.name: f.stat().st_size for f in files},
            "weight_bytes": sum(w.size for w in qa.weights_q), "max_action_difference": max_diff}


def add_arguments(parser):
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="DIR", help="a run directory holding actor.json "
                        "(what `microrl sim --out DIR` wrote)")
    source.add_argument("--weights", metavar="FILE", help="an actor.json file, or a board's "
                        "actor.bin (what `microrl pull` fetched)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output directory (default: the run's or weights' directory/export)")
    parser.add_argument("--env", default=None, help="the built-in environment the actor acts in "
                        "(default: actor.json's, else pendulum; an actor.bin does not say)")
    parser.add_argument("--mpy", action="store_true", help="also compile policy.mpy with mpy-cross")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args):
    weights = Path(args.run) / "actor.json" if args.run else Path(args.weights)
    out_dir = Path(args.out) if args.out else weights.parent / "export"
    try:
        summary = export(weights, out_dir, args.mpy, source_name=str(weights), env_name=args.env)
    except ExportError as e:
        print("microrl export: error: %s" % e, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary))
        return 0
    print("actor %s: %d bytes of int8 weights; largest action difference to the float actor over "
          "10 000 random observations %.2e" % ("x".join(map(str, summary["sizes"])),
                                               summary["weight_bytes"],
                                               summary["max_action_difference"]))
    for f in summary["files"]:
        print("wrote %s (%d bytes)" % (f, summary["bytes"][Path(f).name]))
    return 0
