# CircuitPython's supervisor: ticks_ms() wrapping at 2**29 and runtime.serial_bytes_available.
import _builtin

_t = _builtin.builtin("time")
_select = _builtin.builtin("select")
import sys as _sys
_PERIOD = 1 << 29
_start_ms = _t.time_ns() // 1000000
_offset_ms = _PERIOD - 3000  # the first wrap comes 3 s after import


def ticks_ms():
    return (_t.time_ns() // 1000000 - _start_ms + _offset_ms) % _PERIOD


class _Runtime:
    def __init__(self):
        self._poller = _select.poll()
        self._poller.register(_sys.stdin, _select.POLLIN)

    @property
    def serial_bytes_available(self):
        return bool(self._poller.poll(0))


runtime = _Runtime()
