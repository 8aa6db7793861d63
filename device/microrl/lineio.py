"""Bounded line input from the USB serial (stdin) for the command loop.

A line ends at \n or \r (so \r\n gives an extra blank line, which the loop ignores). Bytes are
gathered one at a time into a single preallocated buffer, so a line costs no heap until it
is complete, and a line longer than the buffer (a 64 KB line, binary garbage without a newline for a
while) is counted and dropped instead of exhausting the heap. Where the port can poll stdin
(``select.poll`` / ``uselect``, or CircuitPython's ``supervisor.runtime.serial_bytes_available``)
``poll_line`` takes the waiting bytes without blocking, which lets the training loop answer commands
between steps.

Ctrl-C (0x03) is the board's interrupt character and never part of a line: the firmware turns it into
KeyboardInterrupt before Python reads it, and where it arrives as data instead (the unix port while
its raw REPL runs code) the reader raises KeyboardInterrupt itself. Either way the loop ends, which
is how mpremote takes the board back; the protocol never sends that byte.
"""

import sys

try:
    import select
except ImportError:
    try:
        import uselect as select
    except ImportError:  # a port without select: blocking reads only
        select = None

try:
    import supervisor
except ImportError:  # not CircuitPython
    supervisor = None

_NL = 10
_CR = 13
_CTRL_C = 3


class LineReader:
    """Lines of at most ``max_line_bytes`` bytes from ``stream`` (default: the console's stdin)."""

    def __init__(self, max_line_bytes=4096, stream=None):
        if stream is None:
            stream = getattr(sys.stdin, "buffer", sys.stdin)
            stream = getattr(stream, "raw", stream)  # CPython: unbuffered, so polling tells the truth
        self._stream = stream
        self._buf = bytearray(max_line_bytes)
        self.max_line_bytes = max_line_bytes
        self._n = 0
        self._dropped = 0
        self.dropped_bytes = 0  # of the line last returned: > 0 means it was too long
        self._poller = None
        self._ipoll = False
        if select is not None and hasattr(select, "poll"):
            poller = select.poll()
            try:
                poller.register(stream, select.POLLIN)
            except (TypeError, ValueError, OSError):  # this stream cannot be polled
                poller = None
            if poller is not None:
                self._poller = poller
                self._ipoll = hasattr(poller, "ipoll")

    def can_poll(self):
        """True when ``poll_line`` can tell whether input is waiting without blocking."""
        return self._poller is not None or supervisor is not None

    def _ready(self):
        if self._poller is not None:
            if self._ipoll:
                for _ in self._poller.ipoll(0):
                    return True
                return False
            return bool(self._poller.poll(0))
        if supervisor is not None:
            return supervisor.runtime.serial_bytes_available
        return False

    def _read_byte(self):
        c = self._stream.read(1)
        if not c:
            raise EOFError("stdin closed")
        if isinstance(c, str):  # a text-only stdin (CircuitPython)
            c = c.encode()
        return c

    def _feed(self, chunk):
        """Add bytes; returns a complete line (without its newline) or None."""
        line = None
        for b in chunk:
            if b == _CTRL_C:
                self._n = 0
                self._dropped = 0
                raise KeyboardInterrupt
            if b == _NL or b == _CR:  # \n, \r\n, and \r from a terminal's Enter key
                line = bytes(self._buf[:self._n])
                self.dropped_bytes = self._dropped
                self._n = 0
                self._dropped = 0
            elif self._n < len(self._buf):
                self._buf[self._n] = b
                self._n += 1
            else:
                self._dropped += 1
        return line

    def read_line(self):
        """Block until a whole line has arrived; raises EOFError when stdin is closed."""
        while True:
            line = self._feed(self._read_byte())
            if line is not None:
                return line

    def poll_line(self):
        """Take the bytes already waiting, without blocking; a complete line or None."""
        while self._ready():
            line = self._feed(self._read_byte())
            if line is not None:
                return line
        return None
