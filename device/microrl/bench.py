"""Named micro-benchmarks of the learner's hot paths, timed on the board itself.

A benchmark is a setup function ``setup(trainer, rng) -> (run, stable)``: ``run()`` does the work
once and returns a result; when ``stable``, every run must return the first run's result, and a
change raises BenchError (a benchmark whose work changes is measuring something else). ``measure``
runs once to warm up, then ``repeat`` times, each after a garbage collection taken outside the timed
span, and reports the median, min and max microseconds and the heap bytes one run allocated (the
most over the runs: a collection during a run, which happens when a run needs more than the free
heap, can only hide allocation; ``heap_free_bytes`` says how much was free before a run).

The benchmarks use the session's learner: ``td3_update`` trains it (one update per run) and
``replay_sample`` overwrites its minibatch; both first fill the replay buffer with random
transitions up to one batch if it holds fewer.
"""

import gc
from array import array

from .backend import K
from .clock import ticks_diff, ticks_us
from .pendulum import MAX_TORQUE_NM, OBS_DIM, Pendulum

_mem_alloc = getattr(gc, "mem_alloc", None)


class BenchError(Exception):
    """A benchmark that cannot run or whose result changed from one run to the next."""


def _observation():
    return array("f", (0.3, -0.95, 0.5))


def _fill_buffer(agent, rng, rows):
    env = Pendulum()
    obs = env.reset(rng)
    prev = Pendulum().obs
    while agent.buffer.size < rows:
        a = 2.0 * rng.uniform() - 1.0
        for j in range(OBS_DIM):
            prev[j] = obs[j]
        r = env.step(a * MAX_TORQUE_NM)
        agent.buffer.add(prev, a, r, obs, 0.0)


def actor_forward(trainer, rng):
    """The deterministic policy for one observation (batch 1)."""
    policy = trainer.agent.policy
    obs = _observation()

    def run():
        return policy(obs)
    return run, True


def td3_update(trainer, rng):
    """One TD3 update: twin critics, and the actor and targets every policy_delay updates."""
    agent = trainer.agent
    _fill_buffer(agent, rng, agent.config.batch_size)

    def run():
        agent.train_step(rng)
        return agent.critic_updates
    return run, False


def env_step(trainer, rng):
    """One pendulum step from a fixed state."""
    env = Pendulum()

    def run():
        env.set_state(1.0, 0.5)
        return env.step(1.5)
    return run, True


def replay_sample(trainer, rng):
    """One minibatch of batch_size rows drawn from the replay buffer into the learner's batch."""
    agent = trainer.agent
    _fill_buffer(agent, rng, agent.config.batch_size)
    buffer, batch, n = agent.buffer, agent.batch, agent.config.batch_size

    def run():
        buffer.sample(rng, n, batch)
        return K.get(batch.obs, 0, 0)
    return run, False


BENCHMARKS = {
    "actor_forward": actor_forward,
    "td3_update": td3_update,
    "env_step": env_step,
    "replay_sample": replay_sample,
}
NAMES = ("actor_forward", "td3_update", "env_step", "replay_sample")


def _median(sorted_values):
    n = len(sorted_values)
    if n % 2:
        return sorted_values[n // 2]
    total = sorted_values[n // 2 - 1] + sorted_values[n // 2]
    return total // 2 if total % 2 == 0 else total / 2


def measure(name, trainer, rng, repeat):
    """Run benchmark ``name`` ``repeat`` times; a dict of its timings and allocation."""
    setup = BENCHMARKS.get(name)
    if setup is None:
        raise BenchError("unknown benchmark %r; known: %s" % (name, ", ".join(NAMES)))
    if not isinstance(repeat, int) or repeat < 1:
        raise BenchError("repeat must be a positive integer, got %r" % (repeat,))
    run, stable = setup(trainer, rng)
    durations_us = [0] * repeat
    alloc_bytes = 0
    free_bytes = None
    first = run()
    for i in range(repeat):
        gc.collect()
        if _mem_alloc is not None:
            free = gc.mem_free()
            if free_bytes is None or free < free_bytes:
                free_bytes = free
        a0 = _mem_alloc() if _mem_alloc is not None else 0
        t0 = ticks_us()
        result = run()
        t1 = ticks_us()
        a1 = _mem_alloc() if _mem_alloc is not None else 0
        durations_us[i] = ticks_diff(t1, t0)
        if a1 - a0 > alloc_bytes:
            alloc_bytes = a1 - a0
        if stable and result != first:
            raise BenchError("%s changed its result: %r then %r" % (name, first, result))
    durations_us.sort()
    return {
        "name": name,
        "repeat": repeat,
        "median_us": _median(durations_us),
        "min_us": durations_us[0],
        "max_us": durations_us[-1],
        "alloc_bytes": alloc_bytes if _mem_alloc is not None else None,
        "heap_free_bytes": free_bytes,
    }
