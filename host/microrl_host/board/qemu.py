"""A QEMU board: MicroPython's QEMU firmware (``firmware/build_qemu.sh``) on an emulated Cortex-M
core, its UART on a pseudo-terminal that ``microrl bench --port`` and mpremote open like a USB
board's.

QEMU itself owns the pty (``-serial pty``) and names it in its output (stdout in QEMU 7.2, stderr
in older ones: both are read). The firmware has no filesystem, so
no ``main.py`` or ``microrl.json``: the package is frozen in, and ``serve(settings)`` starts the
serve loop over the raw REPL (mpremote ``exec --no-follow``, as ``deploy`` starts a board), with the
settings dict a board would read from its ``microrl.json``.

Under ``-icount shift=0`` the virtual clock advances one nanosecond per guest instruction, so a
``time.ticks_us()`` tick is a fixed number of instructions: 1000 on the MPS2 machines, 1562.5 on
microbit (the port assumes a 25 MHz SysTick, QEMU clocks it at 16 MHz). Benchmarks on such a board
report instructions, not time.
"""

import os
import select
import shutil
import subprocess
import threading
import time
from collections import deque
from functools import lru_cache
from pathlib import Path

from microrl_host.board import deploy
from microrl_host.board.vboard import VirtualBoardError

DEFAULT_BINARY = "qemu-system-arm"
# QEMU machine: (its extra options, instructions per ticks_us tick under -icount shift=0).
MACHINES = {
    "microbit": (("-global", "nrf51-soc.flash-size=1048576",
                  "-global", "nrf51-soc.sram-size=262144"), 1562.5),  # Cortex-M0, soft float
    "mps2-an385": ((), 1000.0),  # Cortex-M3, soft float
    "mps2-an500": ((), 1000.0),  # Cortex-M7, single-precision FPU
}
CORES = {"m0": "microbit", "m3": "mps2-an385", "m7": "mps2-an500"}  # build_qemu.sh's core names
_COMMON = ("-nographic", "-monitor", "null", "-semihosting", "-icount", "shift=0", "-serial", "pty")
_PTY_MARKER = "char device redirected to "
_ELF_MAGIC = b"\x7fELF"
START_TIMEOUT_S = 10.0
_OUTPUT_LINES = 50


class QemuBoardError(VirtualBoardError):
    """A QEMU board cannot start: no firmware, not an ELF, no QEMU, an unknown machine."""


def qemu_binary(override=None):
    """``override``, else $QEMU, else qemu-system-arm on PATH: the path of an executable."""
    chosen = override or os.environ.get("QEMU")
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            raise QemuBoardError("QEMU binary %s not found or not executable" % chosen)
        return found
    found = shutil.which(DEFAULT_BINARY)
    if found is None:
        raise QemuBoardError("%s is not installed (not on PATH): apt-get install qemu-system-arm, "
                             "or give its path with --qemu-binary or $QEMU" % DEFAULT_BINARY)
    return found


def check_firmware(path):
    """The firmware's resolved path; QemuBoardError when it is missing or not an ELF file."""
    path = Path(path)
    if not path.is_file():
        raise QemuBoardError("firmware %s does not exist%s" % (
            path, "" if not path.exists() else " as a file"))
    with open(path, "rb") as f:
        magic = f.read(len(_ELF_MAGIC))
    if magic != _ELF_MAGIC:
        raise QemuBoardError("firmware %s is not an ELF file (it starts with %r, not %r)"
                             % (path, magic, _ELF_MAGIC))
    return path.resolve()


def parse_machines(text):
    """Machine names from the output of ``qemu-system-arm -machine help``."""
    names = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("Supported machines"):
            continue
        names.append(line.split()[0])
    return names


@lru_cache(maxsize=None)
def known_machines(binary):
    """The machines ``binary`` emulates (asked once per binary)."""
    try:
        proc = subprocess.run([binary, "-machine", "help"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise QemuBoardError("%s -machine help failed: %s" % (binary, e)) from None
    names = parse_machines(proc.stdout)
    if proc.returncode != 0 or not names:
        raise QemuBoardError("%s -machine help listed no machines (exit %d): is it QEMU?"
                             % (binary, proc.returncode))
    return tuple(names)


def check_machine(machine, binary):
    if machine not in known_machines(binary):
        raise QemuBoardError("QEMU (%s) does not know the machine %r; the firmware's machines: %s"
                             % (binary, machine, ", ".join(MACHINES)))


def command(binary, machine, firmware):
    """The QEMU command line that runs ``firmware`` on ``machine`` with its UART on a pty."""
    extra = MACHINES[machine][0] if machine in MACHINES else ()
    return [binary, "-machine", machine, *extra, *_COMMON, "-kernel", str(firmware)]


def instructions_per_tick(machine):
    """Guest instructions per ``ticks_us`` tick on ``machine``; None when not calibrated."""
    entry = MACHINES.get(machine)
    return entry[1] if entry else None


def machine_of(hello):
    """The QEMU machine a board's hello reply names (``"mps2-an500 with Cortex-M7"``), or None."""
    if (hello or {}).get("platform") != "qemu":
        return None
    return (hello.get("machine") or "").split(" ")[0] or None


def ticks_to_instructions(ticks, per_tick):
    return None if ticks is None else int(round(ticks * per_tick))


def start_code(settings):
    """What the raw REPL runs to start the serve loop with ``settings`` (microrl.json's dict, its
    "backend" included: ``app.start`` passes it on before the kernels load)."""
    return "from microrl.app import start\nstart(%r)\n" % (settings,)


class QemuBoard:
    """One QEMU board: ``start()``, ``serve(settings)``, ``port`` for a transport, ``stop()``."""

    def __init__(self, machine, firmware, binary=None):
        self.machine = machine
        self.firmware = firmware
        self.binary = binary
        self.port = None
        self._proc = None
        self._output = deque(maxlen=_OUTPUT_LINES)
        self._reader = None

    @property
    def instructions_per_tick(self):
        return instructions_per_tick(self.machine)

    @property
    def command(self):
        return command(self.binary, self.machine, self.firmware)

    def check(self):
        """Every bad input as a QemuBoardError, before anything starts."""
        self.firmware = check_firmware(self.firmware)
        self.binary = qemu_binary(self.binary)
        check_machine(self.machine, self.binary)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout_s=START_TIMEOUT_S):
        self.check()
        self._proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        try:
            self.port = self._wait_for_port(timeout_s)
        except QemuBoardError:
            self.stop()
            raise
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        return self

    def _wait_for_port(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        stream = self._proc.stdout
        pending = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            data = os.read(stream.fileno(), 4096)
            if not data:
                self._proc.wait()
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                text = line.decode("utf-8", "replace").strip()
                self._output.append(text)
                if _PTY_MARKER in text:
                    return text.split(_PTY_MARKER, 1)[1].split()[0]
        if pending:
            self._output.append(pending.decode("utf-8", "replace").strip())
        said = " ".join(self._output)[-500:] or "nothing"
        if self._proc.poll() is not None:
            raise QemuBoardError("QEMU exited (status %d) before opening the serial port; it "
                                 "said: %s" % (self._proc.returncode, said))
        raise QemuBoardError("QEMU named no serial port within %.0f s; it said: %s"
                             % (timeout_s, said))

    def _drain(self):
        for line in self._proc.stdout:
            self._output.append(line.decode("utf-8", "replace").rstrip())

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    @property
    def output_text(self):
        return "\n".join(self._output)

    def serve(self, settings=None):
        """Start the serve loop at the firmware's REPL over the raw REPL."""
        deploy.mpremote(self.port, "exec", "--no-follow", start_code(settings or {}))

    def stop(self):
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
        proc.stdout.close()
        self._proc = None
