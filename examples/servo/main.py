# Train TD3 on a real DC motor position servo (MicroPython): a gearmotor behind an H-bridge, a
# quadrature encoder, the task of microrl's simulated "servo" (reach and hold a target angle drawn
# per episode). The learner trains between episodes (episode_updates), so the control period holds
# while the motor runs; during the updates the motor is off. Wiring and limits: the block below.
import math
import time
from array import array

from machine import PWM, Pin

# Wiring (a DRV8833-style driver: PWM on IN1 drives forwards, PWM on IN2 backwards).
PIN_IN1 = 14
PIN_IN2 = 15
PIN_ENC_A = 16
PIN_ENC_B = 17
PWM_FREQ_HZ = 20000
# Pololu 75:1 micro metal gearmotor with its 12 CPR encoder (every edge of both channels counted).
COUNTS_PER_REV = 12 * 75.81
# Safety.
MAX_DUTY = 0.6  # |duty| the action +-1 maps to
PERIOD_US = 20000  # the control period (the simulated servo's DT_S)
EPISODE_STEPS = 100
EPISODE_LIMIT_MS = 3000  # an episode running longer than this (overruns) is stopped
STALL_DUTY = 0.3  # |duty| above this ...
STALL_MS = 200  # ... for this long in all without an encoder count: stall, motor off
SETTLE_MS = 300  # reset: the shaft must not move for this long ...
SETTLE_LIMIT_MS = 3000  # ... waited for at most this long
# The learner: small enough that the actor's forward pass fits the period on the board.
CONFIG = dict(env="servo", actor_hidden=(16, 16), critic_hidden=(32, 32), batch_size=32,
              buffer_capacity=5000, learning_starts=500, episode_updates=100, total_steps=6000,
              eval_every=0, eval_episodes=2, seed=1)
ACTOR_FILE = "servo_actor.bin"

MAX_SPEED_RADPS = 51.84  # the simulated servo's speed scale, so that its policies carry over
EFFORT_WEIGHT = 0.05  # reward -(|error| / pi + EFFORT_WEIGHT action^2), as in the simulation
_RAD_PER_COUNT = 2.0 * math.pi / COUNTS_PER_REV
# Quadrature decoding: (previous AB << 2 | new AB) -> count change; 0 for no or a skipped edge.
_QUADRATURE = (0, 1, -1, 0, -1, 0, 0, 1, 1, 0, 0, -1, 0, -1, 1, 0)


class Motor:
    """Two PWM channels; ``drive`` clips to +-max_duty, ``off`` lets the motor coast."""

    def __init__(self, pin_in1, pin_in2, max_duty):
        self._in1 = PWM(Pin(pin_in1))
        self._in2 = PWM(Pin(pin_in2))
        self._max = max_duty
        self.duty = 0.0
        for pwm in (self._in1, self._in2):
            pwm.freq(PWM_FREQ_HZ)
            pwm.duty_u16(0)

    def drive(self, duty):
        d = min(max(duty, -self._max), self._max)
        code = int(abs(d) * 65535)
        if d >= 0.0:
            self._in2.duty_u16(0)
            self._in1.duty_u16(code)
        else:
            self._in1.duty_u16(0)
            self._in2.duty_u16(code)
        self.duty = d

    def off(self):
        self._in1.duty_u16(0)
        self._in2.duty_u16(0)
        self.duty = 0.0


class Encoder:
    """Counts every edge of channels A and B in a pin interrupt."""

    def __init__(self, pin_a, pin_b):
        self._a = Pin(pin_a, Pin.IN, Pin.PULL_UP)
        self._b = Pin(pin_b, Pin.IN, Pin.PULL_UP)
        self.count = 0
        self._ab = (self._a.value() << 1) | self._b.value()
        edge = self._edge  # one bound method, made here: the handler allocates nothing
        for pin in (self._a, self._b):
            pin.irq(handler=edge, trigger=Pin.IRQ_RISING | Pin.IRQ_FALLING, hard=True)

    def _edge(self, _pin):
        ab = (self._a.value() << 1) | self._b.value()
        self.count += _QUADRATURE[(self._ab << 2) | ab]
        self._ab = ab


class ServoRig:
    """The servo task on the hardware, as a microrl environment (docs/ENVIRONMENTS.md)."""

    obs_dim = 5
    act_dim = 1
    obs_low = (-1.0,) * 5
    obs_high = (1.0,) * 5
    reward_range = (-1.0 - EFFORT_WEIGHT, 0.0)
    episode_steps = EPISODE_STEPS

    def __init__(self, motor, encoder):
        self.motor = motor
        self.encoder = encoder
        self.obs = array("f", (0.0,) * 5)
        self.target = 0.0
        self.stopped = None  # why the episode ended early: "stall", "time limit" or None
        self.ended = (0, None)  # (steps, stopped) of the last episode that ended
        self.stalls = 0
        self.overruns = 0  # control periods missed, over the whole run ...
        self.late_us = 0  # ... and the latest of them
        self._steps = 0
        self._count = 0
        self._stalled_us = 0  # time driven above STALL_DUTY since the last encoder count
        self._start = self._tick = self._read = time.ticks_us()

    def _observe(self, count, w):
        th = ((count * _RAD_PER_COUNT + math.pi) % (2.0 * math.pi)) - math.pi
        e = ((th - self.target + math.pi) % (2.0 * math.pi)) - math.pi
        obs = self.obs
        obs[0] = math.cos(e)
        obs[1] = math.sin(e)
        obs[2] = min(max(w / MAX_SPEED_RADPS, -1.0), 1.0)
        obs[3] = math.cos(th)
        obs[4] = math.sin(th)
        return e

    def reset(self, rng):
        """Motor off, wait for the shaft to rest, draw the target; returns the observation."""
        self.motor.off()
        t0 = still = time.ticks_ms()
        count = self.encoder.count
        while (time.ticks_diff(time.ticks_ms(), still) < SETTLE_MS
               and time.ticks_diff(time.ticks_ms(), t0) < SETTLE_LIMIT_MS):
            time.sleep_ms(5)
            if self.encoder.count != count:
                count = self.encoder.count
                still = time.ticks_ms()
        self.target = math.pi * (2.0 * rng.uniform() - 1.0)
        self.stopped = None
        self._steps = 0
        self._count = count
        self._stalled_us = 0
        self._start = self._tick = self._read = time.ticks_us()
        self._observe(count, 0.0)
        return self.obs

    def step(self, action):
        """Drive for one period at action[0] * MAX_DUTY; returns (obs, reward, terminated)."""
        a = min(max(action[0], -1.0), 1.0)
        self.motor.drive(a * MAX_DUTY)
        tick = time.ticks_add(self._tick, PERIOD_US)
        late = time.ticks_diff(time.ticks_us(), tick)
        if late > 0:  # the period is missed: count it and start the schedule again from now
            self.overruns += 1
            self.late_us = late
            tick = time.ticks_us()
        else:
            time.sleep_us(-late)
        count = self.encoder.count
        now = time.ticks_us()
        dt_us = max(time.ticks_diff(now, self._read), 1)
        w = (count - self._count) * _RAD_PER_COUNT * 1e6 / dt_us
        self._tick = tick
        self._read = now
        if count != self._count:
            self._stalled_us = 0
        elif abs(self.motor.duty) > STALL_DUTY:
            self._stalled_us += dt_us
        self._count = count
        self._steps += 1
        terminated = False
        if self._stalled_us >= STALL_MS * 1000:
            self.stopped = "stall"
            self.stalls += 1
        elif time.ticks_diff(now, self._start) >= EPISODE_LIMIT_MS * 1000:
            self.stopped = "time limit"
        if self.stopped is not None:
            terminated = True
        if terminated or self._steps >= EPISODE_STEPS:
            self.motor.off()  # before the learner's updates between episodes
            self.ended = (self._steps, self.stopped)
        e = self._observe(count, w)
        return self.obs, -(abs(e) / math.pi + EFFORT_WEIGHT * a * a), terminated


def main():
    from microrl.config import TD3Config
    from microrl.train import Trainer, train
    from microrl.weights import save

    motor = Motor(PIN_IN1, PIN_IN2, MAX_DUTY)
    try:
        rig = ServoRig(motor, Encoder(PIN_ENC_A, PIN_ENC_B))
        config = TD3Config(**CONFIG)

        def report(episode, step, episode_return):
            steps, stopped = rig.ended
            print("episode %d: %d steps, return %.2f, overruns %d (latest %d us late)%s" % (
                episode, steps, episode_return, rig.overruns, rig.late_us,
                "" if stopped is None else ", stopped: " + stopped))

        result = train(config, on_episode=report, trainer=Trainer(config, env=rig))
        print("evaluation return %.2f" % result["final_eval_return"])
        print("saved the actor to %s: %d bytes" % (ACTOR_FILE, save(ACTOR_FILE,
                                                                     result["agent"].actor.params)))
    finally:  # any exception, KeyboardInterrupt included: the motor stops
        motor.off()


if __name__ == "__main__":
    main()
