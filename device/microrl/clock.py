"""A monotonic microsecond clock: ``time.ticks_us`` on MicroPython, ``perf_counter`` on CPython."""

try:
    from time import ticks_diff, ticks_us
except ImportError:  # CPython: no ticks functions
    from time import perf_counter

    def ticks_us():
        return int(perf_counter() * 1000000)

    def ticks_diff(end, start):
        return end - start


def elapsed_us(start_us):
    """Microseconds since ``start_us`` (a ``ticks_us()`` value), wrap-around safe."""
    return ticks_diff(ticks_us(), start_us)
