"""Monotonic clocks: ``time.ticks_us`` / ``ticks_ms`` on MicroPython; on CircuitPython and CPython,
whose ``time`` has no ``ticks_*``, ticks made from ``time.monotonic_ns`` (and CircuitPython's
``supervisor.ticks_ms``, which allocates no long integer).

Those ticks wrap at 2**29, as ``supervisor.ticks_ms`` does, so they stay small integers on a board,
and ``ticks_diff`` undoes the wrap as MicroPython's does. Microsecond ticks wrap after about
9 minutes (18 on MicroPython): time short spans with them and long ones (a training run) with
milliseconds. On a CircuitPython board ``monotonic_ns`` advances in steps of 1/32768 s (30.5 us),
so a benchmark of a few microseconds there is timed that coarsely. A board without long integers
(too small for the learner) has no working ``monotonic_ns``: there ``ticks_us`` raises
NotImplementedError, ``ticks_ms`` works.
"""

try:
    from time import ticks_diff, ticks_ms, ticks_us
except ImportError:  # CircuitPython, CPython: no ticks functions
    from time import monotonic_ns

    _PERIOD = 1 << 29
    _MASK = _PERIOD - 1
    _HALF = _PERIOD >> 1

    def ticks_diff(end, start):
        return ((end - start + _HALF) & _MASK) - _HALF

    def ticks_us():
        return (monotonic_ns() // 1000) & _MASK

    try:
        from supervisor import ticks_ms
    except ImportError:  # CPython, or a CircuitPython build without supervisor.ticks_ms
        def ticks_ms():
            return (monotonic_ns() // 1000000) & _MASK


def elapsed_s(start_ms):
    """Seconds since ``start_ms`` (a ``ticks_ms()`` value), wrap-around safe."""
    return ticks_diff(ticks_ms(), start_ms) / 1000.0
