"""A fake ``time`` in virtual microseconds for examples/servo (see machine.py): sleeping advances
the simulated plant; nothing else moves the clock, so a test's timing is exact."""

from machine import TICKS_PERIOD, plant

_HALF = TICKS_PERIOD // 2


def ticks_add(ticks, delta):
    return (ticks + delta) % TICKS_PERIOD


def ticks_diff(end, start):
    return ((end - start + _HALF) % TICKS_PERIOD) - _HALF


def ticks_us():
    if plant.pause is not None and plant.now_us >= plant.pause[0]:
        pause_us = plant.pause[1]
        plant.pause = None
        plant.advance_to(plant.now_us + pause_us)
    return plant.now_us % TICKS_PERIOD


def ticks_ms():
    return (plant.now_us // 1000) % TICKS_PERIOD


def sleep_us(us):
    if plant.fault is not None and plant.now_us >= plant.fault[0]:
        raise plant.fault[1]("fault injected at %d us" % plant.now_us)
    plant.advance_to(plant.now_us + max(int(us), 0))


def sleep_ms(ms):
    sleep_us(1000 * ms)
