"""The environment protocol: an environment written here, not in the package (4 observations, 2
actions, terminating), trains on the device under MicroPython exactly as on the mirror; the
protocol's bad input; the int8 actor and export with two actions."""

import json

import numpy as np
import pytest

from devicerun import run_device
from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.qactor import QActor
from microrl_host.mirror.train import train as mirror_train
from microrl_host.sim import export

# A point mass on a plane pushed by two forces: observation [x, y, vx, vy], action the force per
# axis in [-1, 1], reward -(x^2 + y^2) - 0.05 |a|^2; leaving the 2 x 2 square terminates the
# episode. Python floats and an array only: the same code runs under MicroPython and CPython.
POINT_MASS = '''
from array import array


class PointMass:
    obs_dim = 4
    act_dim = 2
    obs_low = (-2.0, -2.0, -3.0, -3.0)
    obs_high = (2.0, 2.0, 3.0, 3.0)
    reward_range = (-8.5, 0.0)
    episode_steps = 60

    def __init__(self):
        self.obs = array("d", [0.0, 0.0, 0.0, 0.0])

    def reset(self, rng):
        o = self.obs
        o[0] = 1.5 * (2.0 * rng.uniform() - 1.0)
        o[1] = 1.5 * (2.0 * rng.uniform() - 1.0)
        o[2] = 0.0
        o[3] = 0.0
        return o

    def step(self, action):
        o = self.obs
        for k in (0, 1):
            v = o[2 + k] + 0.2 * action[k]
            v = -3.0 if v < -3.0 else (3.0 if v > 3.0 else v)
            o[2 + k] = v
            o[k] = o[k] + 0.1 * v
        x, y = o[0], o[1]
        reward = -(x * x + y * y) - 0.05 * (action[0] * action[0] + action[1] * action[1])
        return o, reward, abs(x) > 2.0 or abs(y) > 2.0

    def get_state(self):
        return tuple(self.obs)

    def set_state(self, state):
        for j in range(4):
            self.obs[j] = state[j]
        return self.obs
'''
_SPACE = {}
exec(POINT_MASS, _SPACE)
PointMass = _SPACE["PointMass"]

RUN = dict(actor_hidden=[8, 8], critic_hidden=[8, 8], batch_size=8, buffer_capacity=1500,
           learning_starts=300, total_steps=2000, eval_every=1000, eval_episodes=2, seed=5)

DEVICE_RUN = POINT_MASS + '''
from microrl.backend import K
from microrl.config import TD3Config
from microrl.train import Trainer, train
config = TD3Config(**%r)
trainer = Trainer(config, env=PointMass())
result = train(config, trainer=trainer)
agent = trainer.agent
stored = [agent.buffer.size, trainer.episodes]
weights = []
for m in agent.actor.params:
    rows, cols = K.shape(m)
    weights.append([K.get(m, i, j) for i in range(rows) for j in range(cols)])
print(json.dumps({"episode_returns": result["episode_returns"],
                  "eval_returns": result["eval_returns"], "stored": stored, "actor": weights}))
'''


@pytest.mark.parametrize("options", [{}, {"replay": "compressed", "act_int8": True},
                                     {"episode_updates": 20, "prioritized": True}],
                         ids=["float-replay", "compressed-int8", "episode-updates-per"])
def test_a_test_defined_environment_trains_on_micropython_as_on_the_mirror(options):
    config = dict(RUN, **options)
    out = run_device(DEVICE_RUN % (config,))
    mirror = mirror_train(TD3Config(**config), dtype=np.float64, make_env=PointMass)
    lengths = len(out["episode_returns"])
    print("%r: %d episodes, %d evaluations" % (options, lengths, len(out["eval_returns"])))
    # Episodes end by termination too: more of them than 2000 / 60 truncated ones.
    assert lengths == len(mirror["episode_returns"]) > 2000 // 60
    diff = np.max(np.abs(np.subtract(out["episode_returns"], mirror["episode_returns"])))
    print("largest episode-return difference %.2e" % diff)
    np.testing.assert_allclose(out["episode_returns"], mirror["episode_returns"], atol=1e-9, rtol=0)
    np.testing.assert_allclose([r for _, r in out["eval_returns"]],
                               [r for _, r in mirror["eval_returns"]], atol=1e-9, rtol=0)
    actor = mirror["agent"].actor.get_weights()
    for got, want in zip(out["actor"], actor):
        np.testing.assert_allclose(got, np.ravel(want), atol=1e-9, rtol=0)
    assert actor[-1].shape[-1] == 2  # two actions out


BAD_ENV = POINT_MASS + '''
from microrl.config import TD3Config
from microrl.train import Trainer


def attempt(env, steps=0):
    try:
        t = Trainer(TD3Config(batch_size=4, buffer_capacity=50, actor_hidden=(4,),
                              critic_hidden=(4,)), env=env)
        for _ in range(steps):
            t.step()
    except ValueError as e:
        return [str(e), t.agent.buffer.size if steps else None]
    return None


class NoBounds(PointMass):
    reward_range = None


class ShortBounds(PointMass):
    obs_low = (-1.0, -1.0)


class NoSteps(PointMass):
    episode_steps = 0


class ShortReset(PointMass):
    def reset(self, rng):
        return [0.0, 0.0, 0.0]


class TwoTuple(PointMass):
    def step(self, action):
        return PointMass.step(self, action)[:2]


class WrongObs(PointMass):
    def step(self, action):
        o, r, t = PointMass.step(self, action)
        return [1.0, 2.0], r, t


class HalfState(PointMass):
    set_state = None


del HalfState.set_state
out = [attempt(NoBounds()), attempt(ShortBounds()), attempt(NoSteps()), attempt(ShortReset()),
       attempt(TwoTuple(), 1), attempt(WrongObs(), 1)]
print(json.dumps(out))
'''


def test_an_environment_that_breaks_the_protocol_is_named_before_training():
    out = run_device(BAD_ENV)
    expected = [
        "environment NoBounds: reward_range must be a sequence of 2 numbers, got None",
        "environment ShortBounds: obs_low must be a sequence of 4 numbers, got (-1.0, -1.0)",
        "environment NoSteps: episode_steps must be a positive integer, got 0",
        "environment ShortReset: reset() must return 4 observation floats, got [0.0, 0.0, 0.0]",
        "environment TwoTuple: step() must return (obs, reward, terminated), got",
        "environment WrongObs: step() must return 4 observation floats, got [1.0, 2.0]",
    ]
    for (message, stored), want in zip(out, expected):
        assert message.startswith(want), (message, want)
    # The step checks come before the step is stored: nothing entered the replay buffer.
    assert [o[1] for o in out[4:]] == [0, 0]


def test_compressed_replay_needs_the_environment_bounds():
    out = run_device('''
from microrl.compressed import CompressedReplay
class Env:
    obs_dim = 2
    act_dim = 1
    obs_low = (-1.0, -1.0)
    obs_high = (1.0, 1.0)
try:
    CompressedReplay(10, Env())
    print(json.dumps(None))
except ValueError as e:
    print(json.dumps(str(e)))
''')
    assert out == "compressed replay needs the environment's reward_range"


def test_mirror_compressed_replay_codes_with_the_environment_bounds():
    """Codes around the centre of each field's bounds, within half a step; rewards in
    reward_range; two actions coded per slot."""
    from microrl_host.mirror.compressed import CompressedReplayBuffer
    from microrl_host.mirror.rng import Rng

    env = PointMass()
    buf = CompressedReplayBuffer(100, env)
    gen = np.random.default_rng(1)
    rows = []
    for i in range(60):
        obs = gen.uniform(env.obs_low, env.obs_high)
        nxt = gen.uniform(env.obs_low, env.obs_high)
        act = gen.uniform(-1, 1, 2)
        r = -gen.uniform(0, 8.5)
        buf.add(obs, act, r, nxt, 1.0, True)  # every step terminal: each slot stands alone
        rows.append((obs, act, r))
    idx = np.arange(60)
    obs, action, reward, _, done = buf.decode(idx)
    half = (np.subtract(env.obs_high, env.obs_low)) / 2.0
    assert np.all(np.abs(obs - [r[0] for r in rows]) <= 0.5 * half / 32767 * (1 + 1e-9))
    assert np.all(np.abs(action - [r[1] for r in rows]) <= 0.5 / 32767 * (1 + 1e-9))
    assert np.all(np.abs(reward[:, 0] - [r[2] for r in rows]) <= 0.5 * 8.5 / 16383 * (1 + 1e-9))
    assert np.all(done == 1.0) and buf.sample(Rng(0), 8)[1].shape == (8, 2)


def test_int8_actor_and_export_with_two_actions(tmp_path):
    """A 4-input, 2-action actor: the mirror's QActor gives both actions, export writes a policy
    whose actions() equals it exactly under MicroPython, and an actor of the wrong shape is
    refused naming the shape it needs."""
    rng = np.random.default_rng(3)
    sizes = (4, 6, 2)
    params = [rng.normal(size=(4, 6)), rng.normal(size=6), rng.normal(size=(6, 2)),
              rng.normal(size=2)]
    export.save_actor(tmp_path / "actor.json", sizes, params, env="point mass")
    summary = export.export(tmp_path / "actor.json", tmp_path / "out", dims=(4, 2))
    assert summary["sizes"] == [4, 6, 2] and summary["max_action_difference"] < 0.05
    qa = export.quantize(sizes, params)
    obs = export.random_observations(50, seed=2, obs_dim=4)
    want = [qa.actions(o).tolist() for o in obs]
    got = run_device('''
import sys
sys.path.insert(0, %r)
import policy
print(json.dumps([list(policy.actions(o)[:2]) for o in %r]))
''' % (str(tmp_path / "out"), obs.tolist()))
    assert got == want
    assert not hasattr(QActor(sizes), "act")
    text = (tmp_path / "out" / "policy.py").read_text()
    assert "def actions(" in text and "def act(" not in text  # act(cos, sin, thdot): pendulum's
    with pytest.raises(export.ExportError, match=r"not an actor of 4 inputs, 1 outputs: needs 4 "
                                                 r"inputs, 1 tanh output, got sizes \[4, 6, 2\]"):
        export.export(tmp_path / "actor.json", tmp_path / "bad", dims=(4, 1))
    with pytest.raises(export.ExportError, match="unknown environment 'point mass'"):
        export.export(tmp_path / "actor.json", tmp_path / "bad")
    assert json.loads((tmp_path / "actor.json").read_text())["env"] == "point mass"


RESUME_RUN = POINT_MASS + '''
import os
os.chdir(%r)
from microrl.checkpoint import resume
from microrl.config import TD3Config
from microrl.train import Trainer, train
from microrl import weights
c = TD3Config(**%r)
t = Trainer(c, env=PointMass())
info = resume(t) if %r else None
train(c, trainer=t)
print(json.dumps({"info": info, "steps": t.steps, "actor": weights.pack(t.agent.actor.params).hex()}))
'''


def test_a_checkpoint_resumes_a_test_defined_environment_inside_its_episode(tmp_path):
    """get_state/set_state carry the point mass across the checkpoint: the resumed run ends with
    the uninterrupted run's actor, byte for byte."""
    config = dict(RUN, learning_starts=20, total_steps=150, eval_every=0, eval_episodes=1,
                  buffer_capacity=200)
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    whole.mkdir()
    parts.mkdir()
    reference = run_device(RESUME_RUN % (str(whole), config, False))
    saved = dict(config, checkpoint_every=7, checkpoint_replay=True)
    run_device(RESUME_RUN % (str(parts), dict(saved, total_steps=52), False))
    resumed = run_device(RESUME_RUN % (str(parts), saved, True))
    assert resumed["info"]["steps"] == 49  # inside the first episodes (60 steps or fewer)
    assert resumed["steps"] == reference["steps"] == 150
    assert resumed["actor"] == reference["actor"]


ASYMMETRIC = '''
import struct
from microrl.batch import Batch
from microrl.compressed import CompressedReplay
from microrl.backend import K
from microrl.rng import Rng
class Env:
    obs_dim = 2
    act_dim = 2
    obs_low = (0.0, -1.0)
    obs_high = (4.0, 3.0)
    reward_range = (-1.0, 2.0)
rows = json.loads(%r)
buf = CompressedReplay(50, Env())
for obs, a, r, nxt in rows:
    buf.add(obs, a, r, nxt, 0.0, False)
batch = Batch(8, 2, 2)
buf.sample(Rng(3), 8, batch)
out = []
for m in (batch.obs, batch.sa, batch.reward, batch.next_obs):
    n, cols = K.shape(m)
    out.append([struct.pack("<d", K.get(m, i, j)).hex() for i in range(n) for j in range(cols)])
print(json.dumps(out))
'''


def test_compressed_replay_with_bounds_off_centre_equals_the_mirror():
    """Bounds not centred on 0 take the codec's offset path: device codes and decodes as the
    mirror does, exactly."""
    from microrl_host.mirror.compressed import CompressedReplayBuffer
    from microrl_host.mirror.rng import Rng

    class Env:
        obs_dim, act_dim = 2, 2
        obs_low, obs_high = (0.0, -1.0), (4.0, 3.0)
        reward_range = (-1.0, 2.0)

    gen = np.random.default_rng(5)
    rows = [(gen.uniform(Env.obs_low, Env.obs_high).tolist(), gen.uniform(-1, 1, 2).tolist(),
             float(gen.uniform(-1, 2)), gen.uniform(Env.obs_low, Env.obs_high).tolist())
            for _ in range(40)]
    out = run_device(ASYMMETRIC % (json.dumps(rows),))
    mirror = CompressedReplayBuffer(50, Env())
    for obs, a, r, nxt in rows:
        mirror.add(obs, a, r, nxt, 0.0, False)
    obs, action, reward, next_obs, _ = mirror.sample(Rng(3), 8)
    expect = (obs, np.hstack([obs, action]), reward, next_obs)
    for got, want in zip(out, expect):  # the float64 bits (MicroPython's repr may round)
        bits = np.frombuffer(bytes.fromhex("".join(got)), "<f8").reshape(want.shape)
        np.testing.assert_array_equal(bits, want)
    assert np.min(obs[:, 0]) >= 0.0 and np.max(np.abs(obs - 2.0)) > 1.0  # off centre, in range
