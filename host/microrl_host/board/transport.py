"""The host end of a board's serial line: a Transport moves bytes and knows nothing of the protocol.

- ``SerialTransport``: pyserial, for a USB board or any tty.
- ``VirtualTransport``: starts (or attaches to) a virtual board and opens its port with the very same
  serial code, so the virtual and the real path differ only in who owns the board.

The typed errors of the board link live here too, so that a caller imports one module to catch them:
``BoardError`` (the board answered with an error, carries its message and traceback),
``BoardTimeout`` (no answer within the timeout), ``BoardReset`` (the board is no longer running its
serve loop: it restarted, fell back to its REPL, or its port went away), ``PortUnavailable`` (the
port could not be opened at all).
"""

import time

import serial

from microrl_host.board.vboard import VirtualBoard


class LinkError(Exception):
    """Base of the board link's errors."""


class BoardError(LinkError):
    """An error reply. ``reply`` is the board's whole reply; ``board_traceback`` its traceback."""

    def __init__(self, message, reply=None):
        super().__init__(message)
        self.reply = reply or {}
        self.error_type = self.reply.get("type")
        self.board_traceback = self.reply.get("traceback")

    def __str__(self):
        text = super().__str__()
        if self.board_traceback:
            text += "\nboard traceback:\n" + self.board_traceback.rstrip()
        return text


class BoardTimeout(LinkError, TimeoutError):
    """The board sent nothing for ``timeout_s`` seconds."""


class BoardReset(LinkError):
    """The serve loop is gone: the board restarted, crashed to its REPL, or was unplugged."""


class PortUnavailable(LinkError):
    """The port cannot be opened: no such device, busy, or no permission."""


class ProtocolViolation(LinkError):
    """The board sent something the protocol does not allow (a bad chunk, a wrong size)."""


class Transport:
    """Bytes to and from a board. Subclasses implement ``write``, ``read`` and ``close``."""

    port = None

    def write(self, data):
        raise NotImplementedError

    def read(self, timeout_s):
        """Bytes that arrive within ``timeout_s`` (returns as soon as some do); b"" if none."""
        raise NotImplementedError

    def discard_input(self):
        """Drop whatever the board sent that nobody read yet."""
        while self.read(0.0):
            pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SerialTransport(Transport):
    """A serial port through pyserial. DTR and RTS stay low: on ESP32 boards with a USB-UART bridge
    they are wired to reset and boot-mode pins, and raising them on open would reset the board."""

    def __init__(self, port, baudrate=115200, write_timeout_s=10.0):
        self.port = port
        ser = serial.Serial()
        ser.port = port
        ser.baudrate = baudrate
        ser.timeout = 0
        ser.write_timeout = write_timeout_s
        ser.dtr = False
        ser.rts = False
        ser.exclusive = True
        try:
            ser.open()
        except serial.SerialException as e:
            raise PortUnavailable("cannot open %s: %s" % (port, e)) from e
        self._serial = ser

    def write(self, data):
        try:
            self._serial.write(data)
            self._serial.flush()
        except serial.SerialTimeoutException as e:
            raise BoardTimeout("%s took no input for %.1f s"
                               % (self.port, self._serial.write_timeout)) from e
        except (serial.SerialException, OSError) as e:
            raise BoardReset("port %s went away (board reset or unplugged?): %s"
                             % (self.port, e)) from e

    def read(self, timeout_s):
        ser = self._serial
        try:
            ser.timeout = max(0.0, timeout_s)
            data = ser.read(1)
            if data:
                waiting = ser.in_waiting
                if waiting:
                    ser.timeout = 0
                    data += ser.read(waiting)
            return data
        except (serial.SerialException, OSError) as e:
            raise BoardReset("port %s went away (board reset or unplugged?): %s"
                             % (self.port, e)) from e

    def discard_input(self):
        try:
            self._serial.reset_input_buffer()
        except (serial.SerialException, OSError) as e:
            raise BoardReset("port %s went away: %s" % (self.port, e)) from e
        time.sleep(0.05)
        while self.read(0.0):
            pass

    def close(self):
        if self._serial.is_open:
            self._serial.close()


class VirtualTransport(SerialTransport):
    """A virtual board's port. Pass a started ``VirtualBoard`` to attach to it, or a board profile
    (and optionally an interpreter and flash directory) to start one that closes with the transport.
    """

    def __init__(self, board=None, profile=None, micropython=None, flash_dir=None):
        self._owns_board = board is None
        if board is None:
            board = VirtualBoard.from_profile(profile, micropython, flash_dir).start()
        self.board = board
        try:
            super().__init__(board.port)
        except PortUnavailable:
            if self._owns_board:
                board.stop()
            raise

    def close(self):
        super().close()
        if self._owns_board:
            self.board.stop()
