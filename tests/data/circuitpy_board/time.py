# A CircuitPython board's time module: these names and no others (no ticks_*, no time_ns).
import _builtin

_t = _builtin.builtin("time")
sleep = _t.sleep
time = _t.time
localtime = _t.localtime
mktime = _t.mktime


def monotonic_ns():
    return _t.time_ns()


def monotonic():
    return _t.time_ns() / 1e9


class struct_time(tuple):
    pass
