"""Run device code under MicroPython (or CPython with a chosen backend) and read its JSON output.

The script gets ``device/`` on its import path and must print one JSON document as its last line.
"""

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from microrl_host.board.mpy import compile_package
from microrl_host.board.vboard import default_micropython

REPO = Path(__file__).resolve().parent.parent
DEVICE_DIR = REPO / "device"


def micropython_path():
    """The interpreter under test: $MICROPYTHON, else the venv's, else the one on PATH."""
    return default_micropython()


_compiled = {}


def compiled_device_dir():
    """A directory holding the device package compiled to .mpy (once per test process).

    A board runs bytecode (``deploy --mpy`` or frozen firmware), so memory tests import this
    rather than compiling the sources inside the measured heap."""
    if "dir" not in _compiled:
        out = Path(tempfile.mkdtemp(prefix="microrl-mpy-"))
        atexit.register(shutil.rmtree, out, True)
        compile_package(out)
        _compiled["dir"] = out
    return _compiled["dir"]


def run_device(body, engine="micropython", heap=None, backend=None, float_bits=None,
               timeout_s=600, args=(), precompiled=False):
    """Run ``body`` with device/ importable; returns the parsed JSON of its last output line.

    ``engine``: "micropython" or "cpython"; ``backend``/``float_bits`` set MICRORL_BACKEND and
    MICRORL_FLOAT_BITS (under micropython the backend is ``python`` unless given: the float
    kernels the float mirror computes, not the viper backend the interpreter would pick); ``heap`` (e.g. "256K") limits the MicroPython heap; ``precompiled``
    imports the package from .mpy files instead of the sources.
    """
    package_dir = compiled_device_dir() if precompiled else DEVICE_DIR
    header = "import sys\nsys.path.insert(0, %r)\nimport json\n" % str(package_dir)
    script = header + body
    env = dict(os.environ)
    env.pop("MICRORL_BACKEND", None)
    env.pop("MICRORL_FLOAT_BITS", None)
    if backend is None and engine == "micropython":
        backend = "python"
    if backend:
        env["MICRORL_BACKEND"] = backend
    if float_bits:
        env["MICRORL_FLOAT_BITS"] = str(float_bits)
    if engine == "micropython":
        cmd = [micropython_path()]
        if heap:
            cmd += ["-X", "heapsize=" + heap]
        cmd += ["-c", script]
    elif engine == "cpython":
        cmd = [sys.executable, "-c", script]
    else:
        raise ValueError("engine must be micropython or cpython, got %r" % engine)
    proc = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout_s,
                          env=env)
    if proc.returncode != 0:
        raise RuntimeError("device script failed (%s):\n%s\n%s" % (engine, proc.stdout[-2000:],
                                                                   proc.stderr[-4000:]))
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


TRAIN_SCRIPT = """
from microrl.config import TD3Config
from microrl.train import train
result = train(TD3Config(**%r))
agent = result["agent"]
print(json.dumps({"episode_returns": result["episode_returns"],
                  "eval_returns": result["eval_returns"],
                  "max_priority": agent.per.max_priority if agent.per is not None else None}))
"""


def compare_whole_run(config, episodes, tolerance=1e-3):
    """Train ``config`` (a dict) under MicroPython and on the float64 mirror; assert that they
    give ``episodes`` episode returns and the same returns and evaluations within ``tolerance``.
    Returns (device output, mirror result, largest episode-return difference)."""
    import numpy as np
    from microrl_host.mirror.config import TD3Config
    from microrl_host.mirror.train import train

    out = run_device(TRAIN_SCRIPT % (config,))
    mirror = train(TD3Config(**config), dtype=np.float64)
    assert len(out["episode_returns"]) == episodes
    diff = float(np.max(np.abs(np.subtract(out["episode_returns"], mirror["episode_returns"]))))
    print("%r: max episode-return difference micropython vs mirror %.2e" % (config, diff))
    np.testing.assert_allclose(out["episode_returns"], mirror["episode_returns"], atol=tolerance,
                               rtol=0)
    np.testing.assert_allclose([r for _, r in out["eval_returns"]],
                               [r for _, r in mirror["eval_returns"]], atol=tolerance, rtol=0)
    return out, mirror, diff
