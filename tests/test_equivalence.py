"""The same TD3 computed four ways must agree: the device code under `micropython` (pure-Python
backend), the device code under CPython (numpy standing in for ulab), the host mirror, and a PyTorch
reference of the same update (float64 throughout)."""

import json

import numpy as np
import pytest

from devicerun import compare_whole_run, run_device
from microrl_host.mirror.config import TD3Config as MirrorConfig
from microrl_host.mirror.rng import Rng as MirrorRng
from microrl_host.mirror.td3 import TD3 as MirrorTD3
from td3_reference import NETWORKS, reference_update

CONFIG = dict(actor_hidden=[16, 16], critic_hidden=[16, 16], batch_size=16, buffer_capacity=400,
              policy_delay=1, learning_starts=0)
INIT_SEED = 5
UPDATE_SEED = 9
ROWS = 300


def transitions():
    """Replay rows shared by every implementation: (obs, action, reward, next_obs, done)."""
    rng = MirrorRng(21, 3)
    rows = []
    for _ in range(ROWS):
        th, thdot = 6.28 * rng.uniform() - 3.14, 16.0 * rng.uniform() - 8.0
        nth, nthdot = th + 0.05 * thdot, thdot + rng.uniform() - 0.5
        rows.append(([np.cos(th), np.sin(th), thdot], 2.0 * rng.uniform() - 1.0,
                     -16.0 * rng.uniform(), [np.cos(nth), np.sin(nth), nthdot], 0.0))
    return rows


DEVICE_SCRIPT = """
from microrl.backend import K
from microrl.config import TD3Config
from microrl.rng import Rng
from microrl.td3 import TD3
spec = json.loads(%r)
agent = TD3(TD3Config(**spec["config"]), Rng(spec["init_seed"]))
for obs, action, reward, next_obs, done in spec["rows"]:
    agent.buffer.add(obs, [action], reward, next_obs, done)

def weights():
    out = {}
    for name in ("actor", "critic1", "critic2", "actor_target", "critic1_target", "critic2_target"):
        mats = []
        for m in getattr(agent, name).params:
            rows, cols = K.shape(m)
            mats.append([[K.get(m, i, j) for j in range(cols)] for i in range(rows)])
        out[name] = mats
    return out

before = weights()
agent.train_step(Rng(spec["update_seed"]))
print(json.dumps({"before": before, "after": weights()}))
"""


def _device_update(engine, backend, micro_batch=0):
    rows = [(list(map(float, o)), a, r, list(map(float, n)), d) for o, a, r, n, d in transitions()]
    config = dict(CONFIG, micro_batch=micro_batch)
    spec = {"config": config, "init_seed": INIT_SEED, "update_seed": UPDATE_SEED, "rows": rows}
    return run_device(DEVICE_SCRIPT % json.dumps(spec), engine=engine, backend=backend)


def _as_arrays(weights):
    return {name: [np.asarray(a, dtype=np.float64).reshape(np.shape(a)[0], -1)
                   if np.ndim(a) == 2 else np.asarray(a).reshape(1, -1) for a in mats]
            for name, mats in weights.items()}


def _reference(before):
    """The torch update from ``before`` with the batch and noise the spec's draws give."""
    config = MirrorConfig(**CONFIG)
    rows = transitions()
    stored = [[np.float32(v) for v in (*o, a, r, *n, d)] for o, a, r, n, d in rows]
    rng = MirrorRng(UPDATE_SEED)
    idx = [rng.below(ROWS) for _ in range(config.batch_size)]
    noise = [rng.normal() for _ in range(config.batch_size)]
    sel = np.array([stored[i] for i in idx], dtype=np.float64)
    batch = {"obs": sel[:, 0:3], "action": sel[:, 3:4], "reward": sel[:, 4], "next_obs": sel[:, 5:8],
             "done": sel[:, 8], "noise": np.array(noise)}
    weights = {name: [a.reshape(a.shape[1]) if i % 2 else a for i, a in enumerate(mats)]
               for name, mats in before.items()}
    out = reference_update(config, weights, [batch])
    return {name: [np.asarray(a).reshape(1, -1) if i % 2 else np.asarray(a)
                   for i, a in enumerate(mats)] for name, mats in out.items()}


def _max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for name in NETWORKS for x, y in zip(a[name], b[name]))


# micro_batch 5: the device's networks see the batch of 16 as rows 0-4, 5-9, 10-14 and 15, and sum
# the gradients; the mirror and torch see the whole batch at once.
@pytest.mark.parametrize("micro_batch", [0, 5])
def test_one_td3_update_agrees_four_ways(micro_batch):
    mpy = _device_update("micropython", None, micro_batch)
    cpy = _device_update("cpython", "numpy", micro_batch)
    before = _as_arrays(mpy["before"])
    assert _max_diff(before, _as_arrays(cpy["before"])) == 0.0  # same generator, same init
    mirror = MirrorTD3(MirrorConfig(**CONFIG), MirrorRng(INIT_SEED), np.float64)
    for row in transitions():
        mirror.buffer.add(*row)
    mirror_before = {name: [a.reshape(1, -1) if i % 2 else a
                            for i, a in enumerate(mirror.networks[name].get_weights())]
                     for name in NETWORKS}
    assert _max_diff(before, mirror_before) < 1e-15
    mirror.train_step(MirrorRng(UPDATE_SEED))
    mirror_after = {name: [a.reshape(1, -1) if i % 2 else a
                           for i, a in enumerate(mirror.networks[name].get_weights())]
                    for name in NETWORKS}
    reference = _reference(before)
    moved = _max_diff(reference, before)
    assert moved > 1e-4  # the update changed the weights: the comparison below means something
    for label, after in (("micropython", _as_arrays(mpy["after"])),
                         ("cpython-numpy", _as_arrays(cpy["after"])), ("mirror", mirror_after)):
        diff = _max_diff(after, reference)
        print("%s vs torch: max |difference| %.2e (weights moved %.2e)" % (label, diff, moved))
        assert diff < (1e-5 if label == "mirror" or micro_batch == 0 else 1e-12), label


WHOLE_RUN = dict(actor_hidden=[8, 8], critic_hidden=[8, 8], batch_size=8, buffer_capacity=2000,
                 learning_starts=400, total_steps=2000, eval_every=1000, eval_episodes=2, seed=3)


def test_whole_run_micropython_equals_mirror():
    compare_whole_run(WHOLE_RUN, episodes=10)


def test_whole_run_in_micro_batches_equals_the_mirror_in_one_pass():
    compare_whole_run(dict(WHOLE_RUN, micro_batch=3), episodes=10)
