"""CircuitPython boards: `microrl deploy --drive PATH` (the mounted CIRCUITPY drive), deploying over
the REPL, and CircuitPython's own .mpy files.

CircuitPython runs ``code.py`` (before ``main.py``) and finds packages in ``/lib``, where circup
puts them: a deploy writes ``lib/microrl/`` (sources, or with ``--mpy`` .mpy files from the
CircuitPython mpy-cross given as ``--mpy-cross``), ``microrl.json`` and a ``code.py`` that starts
the learner. An existing ``code.py`` that is not ours stays unless ``--boot``. The
package is written first and ``code.py`` last: the board reloads on every write, and the last
reload runs the new code.

Over the REPL (``--port`` on a CircuitPython board) the same files go through mpremote, whose
``fs cp`` takes CircuitPython's wording of ENOENT (``[Errno 2] No such file/directory``) for an
unknown failure and stops: ``python -m microrl_host.board.circuitpy ARGS`` is mpremote taught that
wording, and the deploy runs it instead of mpremote.

CircuitPython's .mpy files start with ``C`` where MicroPython's start with ``M`` (the rest of the
header is alike), so each loads only its own: ``mpy_flavour`` tells which one an mpy-cross writes.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from microrl_host.board import mpy
from microrl_host.board.deploy import DeployError, copy_sources
from microrl_host.board.link import CONSOLE_ESCAPES

DEVICE_DIR = Path(__file__).resolve().parents[3] / "device"
PACKAGE_DIR = "lib/microrl"
SETTINGS_FILE = "microrl.json"
BOOT_FILE = "code.py"
_HEADERS = {b"C": "circuitpython", b"M": "micropython"}
_NAMES = {"circuitpython": "CircuitPython", "micropython": "MicroPython"}
NO_NATIVE = "--native is not for CircuitPython: its builds load no native code from .mpy files"
_ERRNO = re.compile(r"OSError: \[Errno (\d+)\]")
# Drops the old package (a stale .py would shadow a new .mpy) and makes its folders.
_CLEAN = """import os
for name in ('lib', 'lib/microrl'):
    try:
        os.mkdir(name)
    except OSError:
        pass
for name in os.listdir('lib/microrl'):
    os.remove('lib/microrl/' + name)
"""
# Prints (code.py's text or None, whether the flash is read-only to code or None: no storage).
_READ_BOOT = """try:
    boot = open('code.py').read()
except OSError:
    boot = None
try:
    import storage
    readonly = storage.getmount('/').readonly
except (ImportError, AttributeError, OSError):
    readonly = None
print(repr((boot, readonly)))
"""
READ_ONLY = ("the board's flash is read-only to code while its CIRCUITPY drive is mounted over "
             "USB, so nothing can be copied over the REPL: copy to the drive instead with --drive "
             "PATH (its mount point), or let code write with a boot.py (docs/BOARDS.md, "
             "CircuitPython)")
_START = """import sys
for name in list(sys.modules):
    if name == 'code' or name == 'microrl' or name.startswith('microrl.'):
        del sys.modules[name]
import code
"""


def boot_source():
    """The ``code.py`` a deploy writes: the device package's ``main.py``."""
    return (DEVICE_DIR / "main.py").read_text()


def mpy_flavour(mpy_cross=None):
    """Whose .mpy files ``mpy_cross`` writes, "circuitpython" or "micropython" (by their first
    byte)."""
    with tempfile.TemporaryDirectory(prefix="microrl-mpy-") as tmp:
        source, out = Path(tmp) / "probe.py", Path(tmp) / "probe.mpy"
        source.write_text("x = 1\n")
        try:
            proc = subprocess.run(mpy.mpy_cross_command(mpy_cross) + ["-o", str(out), str(source)],
                                  capture_output=True, text=True, timeout=60)
        except OSError as e:
            raise DeployError("cannot run mpy-cross %s: %s" % (mpy_cross, e)) from None
        if proc.returncode != 0 or not out.exists():
            raise DeployError("mpy-cross %s failed on a one-line file: %s"
                              % (mpy_cross, (proc.stderr or proc.stdout).strip()[-400:]))
        header = out.read_bytes()[:1]
    if header not in _HEADERS:
        raise DeployError("mpy-cross %s writes files starting with %r, neither MicroPython's 'M' "
                          "nor CircuitPython's 'C'" % (mpy_cross, header))
    return _HEADERS[header]


def check_mpy_cross(implementation, mpy_cross):
    """DeployError unless ``mpy_cross`` writes .mpy files that ``implementation`` loads."""
    flavour = mpy_flavour(mpy_cross)
    if flavour != implementation:
        theirs, ours = _NAMES.get(flavour, flavour), _NAMES.get(implementation, implementation)
        raise DeployError("%s writes %s .mpy files, which %s does not load: pass %s's own "
                          "mpy-cross as --mpy-cross"
                          % (mpy_cross or "the installed mpy-cross", theirs, ours, ours))


def check_settings(settings):
    """DeployError, before anything is copied, when the settings' config is not a valid one."""
    from microrl_host.mirror.config import TD3Config

    try:
        TD3Config.from_dict(settings.get("config") or {})
    except (TypeError, ValueError) as e:
        raise DeployError("bad config, nothing copied: %s" % e) from None


def stage(out_dir, settings, compiled=False, mpy_cross=None):
    """Write the files of a CircuitPython board into ``out_dir``; [(local path, board path)]."""
    out = Path(out_dir)
    package = out / PACKAGE_DIR
    package.mkdir(parents=True, exist_ok=True)
    if compiled:
        check_mpy_cross("circuitpython", mpy_cross)
        modules = mpy.compile_package(out / "lib", mpy_cross=mpy_cross)
    else:
        modules = copy_sources(package)
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=1) + "\n")
    (out / BOOT_FILE).write_text(boot_source())
    files = [(p, PACKAGE_DIR + "/" + p.name) for p in modules]
    return files + [(out / SETTINGS_FILE, SETTINGS_FILE), (out / BOOT_FILE, BOOT_FILE)]


def _check_boot_file(existing, replace):
    if existing is not None and existing != boot_source() and not replace:
        raise DeployError("the board has a code.py of its own: pass --boot to replace "
                          "it with microrl's (which runs the learner at boot)")


def deploy_drive(drive, settings, compiled=False, mpy_cross=None, replace_boot=False, log=print):
    """Copy the learner onto a mounted CIRCUITPY drive; returns the board paths written."""
    check_settings(settings)
    drive = Path(drive)
    if not drive.is_dir():
        raise DeployError("%s is not a directory: pass the mount point of the CIRCUITPY drive"
                          % drive)
    boot_out = drive / "boot_out.txt"
    if not boot_out.is_file():
        raise DeployError("%s has no boot_out.txt, so it is not a CircuitPython drive: pass the "
                          "mount point of the CIRCUITPY drive" % drive)
    log("drive %s: %s" % (drive, boot_out.read_text(errors="replace").splitlines()[0].strip()))
    boot = drive / BOOT_FILE
    _check_boot_file(boot.read_text(errors="replace") if boot.exists() else None, replace_boot)
    if (drive / "main.py").exists():
        log("note: the board runs code.py, not main.py (which stays)")
    boot_py = drive / "boot.py"
    if settings.get("mode") == "train" and not (
            boot_py.exists() and "remount" in boot_py.read_text(errors="replace")):
        log("note: while the drive is mounted the board cannot save its weights file: train mode "
            "stops at once with the boot.py recipe (storage.remount) unless boot.py remounts "
            "the flash writable for code (docs/BOARDS.md, CircuitPython)")
    with tempfile.TemporaryDirectory(prefix="microrl-deploy-") as tmp:
        files = stage(tmp, settings, compiled, mpy_cross)
        log("copying %d files (%d bytes%s) to %s"
            % (len(files), sum(p.stat().st_size for p, _ in files),
               ", CircuitPython .mpy" if compiled else "", drive / PACKAGE_DIR))
        shutil.rmtree(drive / PACKAGE_DIR, ignore_errors=True)
        (drive / PACKAGE_DIR).mkdir(parents=True)
        for local, remote in files:
            shutil.copyfile(local, drive / remote)
    if hasattr(os, "sync"):
        os.sync()  # a USB drive caches writes: flush them before the user unplugs it
    log("done: the board reloads and runs code.py (mode %s)" % settings.get("mode", "serve"))
    return [remote for _, remote in files]


def mpremote_command():
    """argv prefix of mpremote with the CircuitPython ENOENT workaround."""
    return [sys.executable, "-m", "microrl_host.board.circuitpy"]


def deploy_repl(port, settings, compiled=False, mpy_cross=None, replace_boot=False, start=True,
                hello_timeout_s=30.0, log=print):
    """Copy the learner to a CircuitPython board over its REPL and start ``code.py``; returns the
    hello reply (None when not serving or not started)."""
    from microrl_host.board.deploy import follow_training, mpremote, say_hello

    check_settings(settings)
    run = mpremote_command()
    out = mpremote(port, "exec", _READ_BOOT, command=run)
    out = CONSOLE_ESCAPES.sub(b"", out.encode()).decode()
    try:
        existing, readonly = ast.literal_eval(out.strip().splitlines()[-1])
    except (ValueError, SyntaxError, IndexError, TypeError):
        raise DeployError("the board on %s answered the code.py check with %r"
                          % (port, out[-200:])) from None
    if readonly:
        raise DeployError(READ_ONLY)
    _check_boot_file(existing, replace_boot)
    with tempfile.TemporaryDirectory(prefix="microrl-deploy-") as tmp:
        files = stage(tmp, settings, compiled, mpy_cross)
        log("copying %d files (%d bytes%s) to :%s over the REPL"
            % (len(files), sum(p.stat().st_size for p, _ in files),
               ", CircuitPython .mpy" if compiled else "", PACKAGE_DIR))
        args = ["exec", _CLEAN]
        for local, remote in files:
            args += ["+", "fs", "cp", str(local), ":" + remote]
        mpremote(port, *args, command=run)
    if not start:
        return None
    if settings.get("mode") == "train":
        follow_training(port, log, _START, run)
        return None
    mpremote(port, "exec", "--no-follow", _START, command=run)
    return say_hello(port, hello_timeout_s, log)


def _convert_circuitpython_errors():
    """Make mpremote read ``OSError: [Errno N] <any wording>`` as OSError N."""
    from mpremote import transport
    from mpremote.mp_errno import MP_ERRNO_TABLE

    convert = transport._convert_filesystem_error

    def converted(error, info):
        result = convert(error, info)
        if not isinstance(result, OSError):
            match = _ERRNO.search(getattr(error, "error_output", ""))
            if match and int(match.group(1)) in MP_ERRNO_TABLE:
                return OSError(MP_ERRNO_TABLE[int(match.group(1))], info)
        return result

    transport._convert_filesystem_error = converted


if __name__ == "__main__":
    _convert_circuitpython_errors()
    from mpremote.main import main

    sys.argv[0] = "mpremote"
    sys.exit(main())
