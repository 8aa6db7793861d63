# Runs under MicroPython (or CPython) with device/ on sys.path: trains the unmodified device code
# and reports as JSON lines on stdout. Usage: micropython driver.py DEVICE_DIR SPEC_JSON_PATH
# (the spec travels in a file: the unix port fails on command-line arguments of a few hundred bytes)
import gc
import json
import sys

sys.path.insert(0, sys.argv[1])
with open(sys.argv[2]) as f:
    spec = json.load(f)

from microrl import backend  # noqa: E402
from microrl.config import TD3Config  # noqa: E402
from microrl.train import Trainer  # noqa: E402

_mem_alloc = getattr(gc, "mem_alloc", None)


def live_bytes():
    if _mem_alloc is None:
        return None
    gc.collect()
    return _mem_alloc()


def emit(obj):
    print(json.dumps(obj))


config = TD3Config(**spec["config"])
trainer = Trainer(config)
peak = live_bytes()
emit({"event": "built", "backend": backend.NAME, "float_bits": backend.FLOAT_BITS,
      "store_bits": backend.STORE_BITS, "heap_bytes": peak})
stop_at = spec.get("steps", config.total_steps)
progress_every = spec.get("progress_every", 0)
while trainer.steps < stop_at:
    finished = trainer.step()
    if progress_every and trainer.steps % progress_every == 0:
        emit({"event": "step", "step": trainer.steps})
    if finished is not None:
        used = live_bytes()
        if used is not None and used > peak:
            peak = used
        emit({"event": "episode", "episode": trainer.episodes, "step": trainer.steps,
              "return": finished, "heap_bytes": used})
    if config.eval_every and trainer.steps % config.eval_every == 0 or trainer.steps == stop_at:
        emit({"event": "eval", "step": trainer.steps, "return": trainer.evaluate()})

def report(trainer, peak):
    """The learned policy's swing-up and the actor's weights. Only the actor is needed now: the rest
    is freed first, so that reporting has room on the smallest heaps (whose learners leave only
    small holes free); this runs in a function so that no new global grows the module's dict."""
    steps, critic_updates, agent = trainer.steps, trainer.agent.critic_updates, trainer.agent
    agent.buffer = agent.per = agent.batch = agent.critic1 = agent.critic2 = None
    agent.critic1_target = agent.critic2_target = agent.actor_target = None
    agent.actor_adam = agent.critic1_adam = agent.critic2_adam = None
    trainer.agent = None
    gc.collect()
    # One deterministic episode of the learned policy from a fixed start, for the picture.
    # (Generic over the environment: this script's bytecode shares the board's heap.)
    from microrl.envs import make
    env = make(config.env)
    obs = env.set_state(spec["show_state"])
    emit({"event": "pose", "th": env.get_state()[0]})
    for _ in range(trainer.episode_length):
        action = agent.policy(obs)
        a = action[0]
        obs = env.step(action)[0]
        emit({"event": "pose", "th": env.get_state()[0], "action": a})
    # The trained actor's float weights, a matrix row a line (sim.py writes them to actor.json).
    for k, m in enumerate(agent.actor.params):
        rows, cols = backend.K.shape(m)
        for i in range(rows):
            emit({"event": "actor", "param": k,
                  "row": [backend.K.get(m, i, j) for j in range(cols)]})
    emit({"event": "done", "steps": steps, "heap_peak_bytes": peak,
          "critic_updates": critic_updates})


report(trainer, peak)
