"""`microrl deploy`: copy the learner to a board (or a virtual board) with mpremote and check it.

Steps, each one mpremote call (``python -m mpremote connect PORT resume ...``; ``resume`` because a
virtual board has no soft reset and a real one needs none):
1. read the firmware's name and .mpy version (``sys.implementation._mpy``);
2. stage ``microrl/`` (sources, or with ``--mpy`` bytecode compiled by mpy-cross for that version),
   ``main.py`` and ``microrl.json`` (made from ``boards/<B>.toml``, defaults if there is none);
3. remove the old package on the board and copy the staged files;
4. start ``main`` (the serve loop) and check the board answers ``hello``.
A CircuitPython board (by its probe, or a CIRCUITPY drive given as ``--drive``) gets its own layout
instead: see circuitpy.py.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from microrl_host.board import mpy
from microrl_host.board.link import BoardLink
from microrl_host.board.transport import LinkError, SerialTransport
from microrl_host.board.vboard import profile_or_defaults

DEVICE_DIR = Path(__file__).resolve().parents[3] / "device"
SETTINGS_FILE = "microrl.json"
MPREMOTE_TIMEOUT_S = 120.0
# Architectures by the index in bits 10+ of sys.implementation._mpy (MicroPython's mpyfiles docs).
MPY_ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
             "xtensa", "xtensawin", "rv32imc", "rv64imc")

_PROBE = ("import sys, json\ni = sys.implementation\n"
          "print(json.dumps([i.name, getattr(i, '_mpy', getattr(i, 'mpy', None))]))")
# Drops the old package (a stale .py would shadow a new .mpy) and makes room for the new one.
_CLEAN = """import os
try:
    for name in os.listdir('microrl'):
        os.remove('microrl/' + name)
except OSError:
    pass
try:
    os.mkdir('microrl')
except OSError:
    pass
"""
# Forget modules of an earlier run, so the new files are the ones imported, then boot as at power-on.
_START = """import sys
for name in list(sys.modules):
    if name == 'main' or name == 'microrl' or name.startswith('microrl.'):
        del sys.modules[name]
import main
"""


class DeployError(Exception):
    """A deploy step failed; the message says which and why."""


def mpremote(port, *args, timeout_s=MPREMOTE_TIMEOUT_S, command=None):
    """Run ``mpremote connect PORT resume ARGS...`` (``command``: another mpremote's argv prefix);
    its stdout, or DeployError."""
    cmd = (command or [sys.executable, "-m", "mpremote"]) + ["connect", port, "resume"] + list(args)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise DeployError("mpremote %s: no result within %.0f s" % (args[0], timeout_s)) from e
    if proc.returncode != 0:
        raise DeployError("mpremote %s failed (exit %d): %s"
                          % (" ".join(args[:2]), proc.returncode,
                             (proc.stderr or proc.stdout).strip()[-2000:]))
    return proc.stdout


def probe(port):
    """(implementation name, sys.implementation._mpy or None) of the board's firmware."""
    out = mpremote(port, "exec", _PROBE)
    name, mpy_value = json.loads(out.strip().splitlines()[-1])
    return name, mpy_value


def mpy_target(implementation, mpy_value):
    """The -march for mpy-cross (or None); DeployError when this mpy-cross cannot serve the board."""
    if implementation != "micropython":
        raise DeployError("%s loads its own .mpy format: deploy without --mpy (or compile with "
                          "that firmware's mpy-cross)" % implementation)
    if mpy_value is None:
        raise DeployError("the firmware does not report its .mpy version: deploy without --mpy")
    version, arch = mpy_value & 0xFF, mpy_value >> 10
    ours = mpy.mpy_cross_version()
    if version != ours[0]:
        raise DeployError("the board loads .mpy v%d, this mpy-cross writes v%d.%d: deploy without "
                          "--mpy or install the matching mpy-cross" % (version, ours[0], ours[1]))
    # Bytecode-only files carry no sub-version or architecture, so any v6.x board loads them;
    # -march matters only for native code, and is passed so that such code would match too.
    return MPY_ARCHS[arch] if arch < len(MPY_ARCHS) else None


def board_settings(profile, mode="serve", steps=None, seed=None, config=None, weights="actor.bin"):
    """The board's microrl.json: the profile's learner table, then ``config`` overrides."""
    learner = dict(profile.learner)
    learner.update(config or {})
    settings = {"board": profile.name, "mode": mode, "config": learner, "weights": weights}
    if steps is not None:
        settings["steps"] = steps
    if seed is not None:
        settings["seed"] = seed
    return settings


def stage(out_dir, settings, march=None, compiled=False, native=False):
    """Write the files to copy into ``out_dir``; returns [(local path, board path)]."""
    out = Path(out_dir)
    package = out / "microrl"
    package.mkdir(parents=True, exist_ok=True)
    if compiled:
        modules = mpy.compile_package(out, march, native)
    else:
        modules = []
        for source in sorted((DEVICE_DIR / "microrl").glob("*.py")):
            shutil.copy(source, package / source.name)
            modules.append(package / source.name)
    shutil.copy(DEVICE_DIR / "main.py", out / "main.py")
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=1) + "\n")
    files = [(p, ":microrl/" + p.name) for p in modules]
    files += [(out / "main.py", ":main.py"), (out / SETTINGS_FILE, ":" + SETTINGS_FILE)]
    return files


def deploy(port, profile, compiled=False, mode="serve", steps=None, seed=None, config=None,
           start=True, hello_timeout_s=30.0, log=print, native=False, mpy_cross=None,
           replace_boot=False):
    """Copy, start and check; returns the board's hello reply (None when not serving).
    ``native`` (with ``compiled``): the pure-Python kernels as machine code for the board.
    A CircuitPython board gets circuitpy.py's layout (``mpy_cross``: its own mpy-cross)."""
    if native and not compiled:
        raise DeployError("--native needs --mpy: machine code travels in .mpy files")
    implementation, mpy_value = probe(port)
    log("board on %s: %s, .mpy %s" % (port, implementation, mpy_value))
    if implementation == "circuitpython":
        from microrl_host.board import circuitpy

        if native:
            raise DeployError(circuitpy.NO_NATIVE)
        return circuitpy.deploy_repl(port, board_settings(profile, mode, steps, seed, config),
                                     compiled, mpy_cross, replace_boot, start, hello_timeout_s,
                                     log)
    if mpy_cross:
        raise DeployError("--mpy-cross is for CircuitPython boards; this one runs %s, whose "
                          "mpy-cross is the installed one" % implementation)
    march = mpy_target(implementation, mpy_value) if compiled else None
    if native and march is None:
        raise DeployError("the firmware reports no native code architecture (its .mpy value "
                          "has none): deploy without --native")
    settings = board_settings(profile, mode, steps, seed, config)
    with tempfile.TemporaryDirectory(prefix="microrl-deploy-") as tmp:
        files = stage(tmp, settings, march, compiled, native)
        size = sum(p.stat().st_size for p, _ in files)
        log("copying %d files (%d bytes%s) for board profile %s"
            % (len(files), size, ", mpy-cross -march=%s" % march if march else
               (", mpy-cross bytecode" if compiled else ""), profile.name)
            + (" (kernels as native code)" if native else ""))
        args = ["exec", _CLEAN]
        for local, remote in files:
            args += ["+", "fs", "cp", str(local), remote]
        mpremote(port, *args)
    if not start:
        return None
    if mode == "train":
        follow_training(port, log)
        return None
    mpremote(port, "exec", "--no-follow", _START)
    return say_hello(port, hello_timeout_s, log)


def say_hello(port, hello_timeout_s, log):
    """The hello reply of the serve loop just started on ``port``, summed up in ``log``."""
    with BoardLink(SerialTransport(port), timeout_s=hello_timeout_s) as link:
        hello = link.connect()
    log("serving: %s %s, ulab %s, %d-bit floats, backend %s (%s), %s bytes free, microrl %s"
        % (hello["implementation"], hello["version"], hello["ulab"], hello["float_bits"],
           hello["backend"], hello.get("backend_reason", "?"), hello["heap_free_bytes"],
           hello["microrl"]))
    return hello


def follow_training(port, log, start=_START, command=None):
    """Start main (train mode) and pass its progress lines to ``log`` until it saved the weights."""
    log("training on the board; its progress lines follow")
    cmd = ((command or [sys.executable, "-m", "mpremote"]) + ["connect", port, "resume", "exec",
                                                              start])
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            log(line.rstrip())
    if proc.returncode != 0:
        raise DeployError("training on the board failed (mpremote exit %d)" % proc.returncode)


def find_port():
    """The first USB serial port that looks like a board (as ``mpremote connect auto`` picks)."""
    import serial.tools.list_ports

    for p in sorted(serial.tools.list_ports.comports(), key=lambda p: p.device):
        if p.vid is not None:
            return p.device
    raise DeployError("no USB serial board found: plug one in or pass --port")


def add_arguments(parser):
    parser.add_argument("--port", default=None, help="serial port (default: the first USB board)")
    parser.add_argument("--board", default=None, help="board profile in boards/ (default: defaults)")
    parser.add_argument("--mpy", action="store_true",
                        help="send bytecode compiled by mpy-cross for the board's .mpy version")
    parser.add_argument("--native", action="store_true",
                        help="with --mpy: the pure-Python kernels as machine code for the board's "
                             "architecture (firmware with the native emitter, no ulab)")
    parser.add_argument("--mode", choices=("serve", "train"), default="serve",
                        help="what the board does at boot (default serve)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (train mode)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the learner")
    parser.add_argument("--config", default=None,
                        help="JSON object of TD3Config overrides on top of the board profile")
    parser.add_argument("--no-start", action="store_true", help="copy only; start nothing")
    parser.add_argument("--json", action="store_true", help="print the hello reply as JSON")
    circuitpython = parser.add_argument_group("CircuitPython (lib/microrl/, microrl.json, code.py)")
    circuitpython.add_argument("--drive", metavar="PATH", default=None,
                               help="copy to this mounted CIRCUITPY drive instead of over serial")
    circuitpython.add_argument("--mpy-cross", metavar="PATH", default=None,
                               help="with --mpy: the mpy-cross to compile with (CircuitPython's "
                                    "own, for a CircuitPython board)")
    circuitpython.add_argument("--replace-code-py", action="store_true",
                               help="replace a code.py that is not microrl's")


def run(args):
    log = (lambda text: print(text, file=sys.stderr)) if args.json else print
    try:
        config = json.loads(args.config) if args.config else None
        if args.drive:
            from microrl_host.board import circuitpy

            if args.native:
                raise DeployError(circuitpy.NO_NATIVE)
            settings = board_settings(profile_or_defaults(args.board), args.mode, args.steps,
                                      args.seed, config)
            circuitpy.deploy_drive(args.drive, settings, args.mpy, args.mpy_cross,
                                   args.replace_code_py, log)
            return 0
        port = args.port or find_port()
        hello = deploy(port, profile_or_defaults(args.board), compiled=args.mpy, mode=args.mode,
                       steps=args.steps, seed=args.seed, config=config, start=not args.no_start,
                       log=log, native=args.native, mpy_cross=args.mpy_cross,
                       replace_boot=args.replace_code_py)
    except (DeployError, LinkError, ValueError) as e:
        print("deploy failed: %s" % e, file=sys.stderr)
        return 1
    if args.json and hello is not None:
        print(json.dumps(hello))
    return 0
