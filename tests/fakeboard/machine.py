"""A fake ``machine`` for examples/servo under the desktop micropython: ``PWM`` and ``Pin`` drive
microrl's simulated servo (device/microrl/servo.py) in virtual time, kept by ``time.py`` beside
this file. The plant takes one DT_S step at every multiple of DT_S at the duty the two PWM
channels then give; its angle becomes encoder counts, each count an edge on pin A or B that calls
the pin's interrupt handler. ``plant`` holds what a test sets (a jammed shaft, an exception at a
given time, a pause) and what it reads back (the largest duty written, the times between writes)."""

import math

from microrl.servo import DT_S, Servo, angle_normalize

PERIOD_US = int(DT_S * 1e6 + 0.5)
TICKS_PERIOD = 1 << 30  # MicroPython's ticks wrap here
GAP_US = 250000  # gaps between duty writes shorter than this are counted (episodes, not resets)
_GRAY = (0, 1, 3, 2)  # AB levels for count & 3: one channel changes per count


class Plant:
    def __init__(self):
        self.servo = Servo()
        self.servo.set_state((0.0, 0.0, 0.0))
        self.now_us = TICKS_PERIOD - 500000  # the ticks wrap half a second in
        self._next_us = self.now_us + PERIOD_US
        self.angle_rad = 0.0  # unwrapped shaft angle
        self.count = 0
        self.counts_per_rev = 12 * 75.81
        self.pins = {}
        self.pwms = {}  # pin id -> PWM
        self.encoder_pins = (16, 17)
        self.motor_pins = (14, 15)
        self.jam_us = None  # (start, end): the shaft is blocked in this window of virtual time
        self.fault = None  # (time, exception class): raised by the first sleep at or after time
        self.pause = None  # (time, us): the first ticks_us at or after time jumps by us
        self.max_code = 0  # the largest duty_u16 ever written
        self.both_on = 0  # writes that left both channels on at once
        self.gaps = {}  # time between two writes (at different times) under GAP_US -> how often
        self.last_write_us = None
        self.last_drive_us = None  # the latest write of a duty other than 0
        self.jam_driven_us = 0  # driven above the stall duty while jammed, since power was off
        self.jam_driven_max_us = 0
        self.stall_duty = 0.3

    def duty(self):
        in1, in2 = (self.pwms[p].code if p in self.pwms else 0 for p in self.motor_pins)
        return (in1 - in2) / 65535.0

    def jammed(self, t_us):
        return self.jam_us is not None and self.jam_us[0] <= t_us < self.jam_us[1]

    def advance_to(self, t_us):
        while self._next_us <= t_us:
            start = self._next_us - PERIOD_US
            duty = self.duty()
            if self.jammed(start):
                self.servo.w = 0.0
                if abs(duty) > self.stall_duty:
                    self.jam_driven_us += PERIOD_US
                    self.jam_driven_max_us = max(self.jam_driven_max_us, self.jam_driven_us)
            else:
                before = self.servo.th
                self.servo.advance(duty)
                self.angle_rad += angle_normalize(self.servo.th - before)
                self._edges()
            if duty == 0.0:
                self.jam_driven_us = 0
            self._next_us += PERIOD_US
        self.now_us = t_us

    def _edges(self):
        target = int(math.floor(self.angle_rad * self.counts_per_rev / (2.0 * math.pi)))
        a_pin, b_pin = (self.pins.get(p) for p in self.encoder_pins)
        while self.count != target:
            old = _GRAY[self.count & 3]
            self.count += 1 if target > self.count else -1
            new = _GRAY[self.count & 3]
            a_pin.level, b_pin.level = new >> 1, new & 1
            pin = a_pin if (old ^ new) & 2 else b_pin
            if pin.handler is not None:
                pin.handler(pin)


plant = Plant()


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, pin_id, mode=None, pull=None):
        self.id = pin_id
        self.level = 0
        self.handler = None
        plant.pins[pin_id] = self

    def value(self):
        return self.level

    def irq(self, handler=None, trigger=0, hard=False):
        if trigger != Pin.IRQ_RISING | Pin.IRQ_FALLING:
            raise ValueError("the encoder needs both edges")
        self.handler = handler


class PWM:
    def __init__(self, pin):
        self.pin = pin
        self.code = 0
        self.hz = 0
        plant.pwms[pin.id] = self

    def freq(self, hz):
        self.hz = hz

    def duty_u16(self, code):
        if not 0 <= code <= 65535:
            raise ValueError("duty_u16 out of range: %r" % (code,))
        self.code = code
        plant.max_code = max(plant.max_code, code)
        in1, in2 = (plant.pwms[p].code if p in plant.pwms else 0 for p in plant.motor_pins)
        plant.both_on += in1 > 0 and in2 > 0
        now = plant.now_us
        last = plant.last_write_us
        if last is not None and 0 < now - last < GAP_US:
            plant.gaps[now - last] = plant.gaps.get(now - last, 0) + 1
        plant.last_write_us = now
        if in1 or in2:
            plant.last_drive_us = now

    def deinit(self):
        self.code = 0
