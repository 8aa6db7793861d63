"""Named micro-benchmarks of the learner's hot paths, timed on the board itself.

A benchmark is a setup function ``setup(trainer, rng) -> (run, stable)``: ``run()`` does the work
once and returns a result; when ``stable``, every run must return the first run's result, and a
change raises BenchError (a benchmark whose work changes is measuring something else). ``measure``
runs once to warm up, once more with garbage collection disabled to count the heap bytes one run
allocates, then ``repeat`` timed runs, each after a collection taken outside the timed span (a
collection during a run is part of its cost and stays in its time). It reports the median, min and
max microseconds, the bytes allocated per run, and the free heap: with the learner built, before the
benchmark's setup (``learner_free_bytes``), before the allocation run (``alloc_free_bytes``) and
the least before a timed run (``heap_free_bytes``). A run that needs more than the free heap raises
MemoryError with collection disabled: the allocation is then reported as not measurable
(``alloc_bytes`` None, ``alloc_error`` naming the free heap) and the timed runs go on with
collection enabled. ``mean_us`` is there for ``trainer_step``, whose steps alternate between
critic-only and full updates: over whole policy_delay cycles of runs the mean is a step's cost.

The benchmarks use the session's learner: the update benchmarks train it (one update or step per
run) and ``replay_sample`` overwrites its minibatch; they first fill the replay buffer with random
transitions up to one batch if it holds fewer, and ``trainer_step`` first runs the warm-up steps.
"""

import gc
from array import array

from .backend import FLOAT_BITS, K
from .clock import ticks_diff, ticks_us
from .envs import make

_mem_alloc = getattr(gc, "mem_alloc", None)


class BenchError(Exception):
    """A benchmark that cannot run or whose result changed from one run to the next."""


def _observation(n):
    """A fixed observation of n floats (for the pendulum: cos, sin th = -0.95, 0.3; thdot 0.5)."""
    return array("f", ((0.3, -0.95, 0.5)[j % 3] for j in range(n)))


def _fill_buffer(agent, rng, rows):
    """Random transitions of a second environment of the learner's kind, until ``rows`` are stored."""
    env = make(agent.config.env)
    obs = env.reset(rng)
    prev = array("d" if FLOAT_BITS == 64 else "f", bytes(FLOAT_BITS // 8 * env.obs_dim))
    a = [0.0] * env.act_dim
    while agent.buffer.size < rows:
        for j in range(env.act_dim):
            a[j] = 2.0 * rng.uniform() - 1.0
        for j in range(env.obs_dim):
            prev[j] = obs[j]
        obs, r, terminated = env.step(a)
        agent.buffer.add(prev, a, r, obs, 1.0 if terminated else 0.0, terminated)
        if terminated:
            obs = env.reset(rng)


def actor_forward(trainer, rng):
    """The deterministic policy for one observation (batch 1)."""
    policy = trainer.agent.policy
    obs = _observation(trainer.env.obs_dim)

    def run():
        return policy(obs)[0]
    return run, True


def td3_update(trainer, rng):
    """One TD3 update: twin critics, and the actor and targets every policy_delay updates."""
    agent = trainer.agent
    _fill_buffer(agent, rng, agent.config.batch_size)

    def run():
        agent.train_step(rng)
        return agent.critic_updates
    return run, False


def critic_update(trainer, rng):
    """The twin critics' update alone: a minibatch, the clipped double-Q target, two Adam steps."""
    agent = trainer.agent
    _fill_buffer(agent, rng, agent.config.batch_size)

    def run():
        agent.update_critic(rng)
        return agent.critic_updates
    return run, False


def full_update(trainer, rng):
    """The update of every policy_delay-th step: critics, actor (and its int8 copy), targets."""
    agent = trainer.agent
    _fill_buffer(agent, rng, agent.config.batch_size)

    def run():
        agent.update_critic(rng)
        agent.update_actor()
        if agent.qactor is not None:
            agent.qactor.refresh(agent.actor)
        agent.update_targets()
        return agent.critic_updates
    return run, False


def trainer_step(trainer, rng):
    """One training step past the warm-up: act, step the environment, store, one TD3 update."""
    while trainer.steps < trainer.config.learning_starts:
        trainer.step()
    agent = trainer.agent
    _fill_buffer(agent, rng, agent.config.batch_size)

    def run():
        trainer.step()
        return trainer.steps
    return run, False


def env_step(trainer, rng):
    """One step of a second environment of the learner's kind, from one fixed state (for the
    pendulum th = 1 rad, thdot = 0.5 rad/s), with every action 0.75."""
    env = make(trainer.config.env)
    env.reset(rng)
    state = (1.0, 0.5) if trainer.config.env == "pendulum" else env.get_state()
    action = [0.75] * env.act_dim

    def run():
        env.set_state(state)
        return env.step(action)[1]
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
    "critic_update": critic_update,
    "full_update": full_update,
    "trainer_step": trainer_step,
    "env_step": env_step,
    "replay_sample": replay_sample,
}
NAMES = ("actor_forward", "td3_update", "critic_update", "full_update", "trainer_step", "env_step",
         "replay_sample")


def _median(sorted_values):
    n = len(sorted_values)
    if n % 2:
        return sorted_values[n // 2]
    total = sorted_values[n // 2 - 1] + sorted_values[n // 2]
    return total // 2 if total % 2 == 0 else total / 2


def _free_bytes():
    gc.collect()
    return gc.mem_free() if _mem_alloc is not None else None


def _allocation(run, check):
    """(bytes one run allocates with collection disabled or None, the free heap, why not)."""
    free = _free_bytes()
    a0 = _mem_alloc()
    result = None
    gc.disable()
    try:
        result = run()
        alloc_bytes = _mem_alloc() - a0
    except MemoryError:  # the heap may be full to the last block: nothing is built before
        alloc_bytes = None
    finally:
        gc.enable()
    if alloc_bytes is None:
        return None, free, ("not measurable: with collection disabled one run needs more than "
                            "the %d bytes free" % free)
    check(result)
    return alloc_bytes, free, None


def measure(name, trainer, rng, repeat):
    """Run benchmark ``name`` ``repeat`` times; a dict of its timings, allocation and free heap."""
    setup = BENCHMARKS.get(name)
    if setup is None:
        raise BenchError("unknown benchmark %r; known: %s" % (name, ", ".join(NAMES)))
    if not isinstance(repeat, int) or repeat < 1:
        raise BenchError("repeat must be a positive integer, got %r" % (repeat,))
    learner_free_bytes = _free_bytes()
    run, stable = setup(trainer, rng)
    first = run()

    def check(result):
        if stable and result != first:
            raise BenchError("%s changed its result: %r then %r" % (name, first, result))
    alloc_bytes, alloc_free_bytes, alloc_error = None, None, None
    if _mem_alloc is not None:
        alloc_bytes, alloc_free_bytes, alloc_error = _allocation(run, check)
    durations_us = [0] * repeat
    free_bytes = None
    for i in range(repeat):
        free = _free_bytes()
        if free is not None and (free_bytes is None or free < free_bytes):
            free_bytes = free
        t0 = ticks_us()
        result = run()
        t1 = ticks_us()
        durations_us[i] = ticks_diff(t1, t0)
        check(result)
    durations_us.sort()
    return {
        "name": name,
        "repeat": repeat,
        "median_us": _median(durations_us),
        "mean_us": sum(durations_us) / repeat,
        "min_us": durations_us[0],
        "max_us": durations_us[-1],
        "alloc_bytes": alloc_bytes,
        "alloc_free_bytes": alloc_free_bytes,
        "alloc_error": alloc_error,
        "heap_free_bytes": free_bytes,
        "learner_free_bytes": learner_free_bytes,
    }
