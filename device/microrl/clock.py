"""Monotonic clocks: ``time.ticks_us`` / ``ticks_ms`` on MicroPython, ``perf_counter`` on CPython.

Microsecond ticks wrap after about 18 minutes on a board: time short spans with them and long ones
(a training run) with milliseconds.
"""

try:
    from time import ticks_diff, ticks_ms, ticks_us
except ImportError:  # CPython: no ticks functions
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_ms():
        return int(perf_counter() * 1000)

    def ticks_diff(end, start):
        return end - start


def elapsed_s(start_ms):
    """Seconds since ``start_ms`` (a ``ticks_ms()`` value), wrap-around safe."""
    return ticks_diff(ticks_ms(), start_ms) / 1000.0
