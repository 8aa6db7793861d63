"""The int8 acting actor: device QActor, mirror QActor, TD3 with act_int8, and `microrl export`.

Exactness claims (all on float64 interpreters): the exported policy.py / policy.mpy, run under
MicroPython with nothing but the exported file on its path, the device QActor (pure-Python backend
under MicroPython, numpy backend under CPython) and the mirror QActor give the same actions bit for
bit. Against the float actor the int8 actions differ by the rounding of weights and activations;
the bound is justified by a first-order model of that rounding (see `error_sigma`).
"""

import binascii
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from devicerun import compare_whole_run, micropython_path, run_device
from microrl_host import cli
from microrl_host.bench.qactor import DEVICE_LOAD_ACTOR, write_weights
from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.mlp import MLP
from microrl_host.mirror.pendulum import MAX_TORQUE_NM, Pendulum
from microrl_host.mirror.qactor import QActor
from microrl_host.mirror.rng import Rng
from microrl_host.mirror.td3 import TD3
from microrl_host.mirror.train import train as mirror_train
from microrl_host.sim import export
from microrl_host.sim.export import float_actions, random_observations

# Random-init 64x64 actor (MLP from Rng(1)): measured max |int8 - float| over 10 000 observations
# 4.6e-3, and the rounding model's largest standard deviation 3.3e-3 (its max ratio 3.2).
FLOAT_BOUND_RANDOM_64 = 0.01
SIGMA_RATIO_MAX = 5.0  # measured at most 3.2 over random 32x32 and 64x64 and two trained actors


def observations(count, seed):
    """(count, 3): cos and sin of an angle uniform in [-pi, pi), thdot uniform in [-8, 8]; the first
    row is all zeros (the zero-input branch)."""
    obs = random_observations(count, seed)
    obs[0] = 0.0
    return obs


def mirror_qactor(sizes, params):
    """A mirror QActor refreshed from a mirror MLP holding `params` (the TD3 path)."""
    actor = MLP(sizes, "tanh", 1)
    actor.set_weights(params)
    qa = QActor(sizes)
    qa.refresh(actor)
    return qa


def error_sigma(sizes, params, qa, obs):
    """Per observation, the standard deviation of int8 action - float action if every rounding
    (each weight to its layer's step s_w, each activation to its vector's step s_x) were an
    independent error uniform over one step (variance step**2 / 12), propagated to first order
    through the float network."""
    last = len(sizes) - 1
    xs, masks = [obs], []
    for k in range(last):
        y = xs[-1] @ params[2 * k] + params[2 * k + 1]
        if k < last - 1:
            masks.append(y > 0.0)
            xs.append(np.maximum(y, 0.0))
        else:
            a = np.tanh(y[:, 0])
    g = np.ones((len(obs), 1))  # d z_out / d y_k
    var = np.zeros(len(obs))
    for k in range(last - 1, -1, -1):
        x = xs[k]
        s_x = np.max(np.abs(x), axis=1) / qa.levels[k]
        var += np.sum(x ** 2, axis=1) * np.sum(g ** 2, axis=1) * qa.scales[k] ** 2 / 12.0
        gx = g @ params[2 * k].T
        var += np.sum(gx ** 2, axis=1) * s_x ** 2 / 12.0
        if k > 0:
            g = gx * masks[k - 1]
    return np.sqrt(var) * (1.0 - a ** 2)


def random_params(sizes, seed):
    return MLP(sizes, "tanh", 1, Rng(seed)).get_weights()


def write_f64(path, values):
    np.ascontiguousarray(values, "<f8").tofile(path)
    return str(path)


def from_hex(text):
    return np.frombuffer(binascii.unhexlify(text), "<f8")


# Reads float64 weights and observations, prints the actions (float64 hex) and the heap growth of
# 1000 policy calls. `HEADER` runs first: the device QActor or the exported policy.
ACTIONS_SCRIPT = """
import gc, binascii
from array import array
%(header)s
with open(%(obs)r, "rb") as f:
    obs_flat = array("d", f.read())
n = len(obs_flat) // 3
o = array("d", [0.0, 0.0, 0.0])
out = array("d", bytes(8 * n))
for i in range(n):
    o[0], o[1], o[2] = obs_flat[3 * i], obs_flat[3 * i + 1], obs_flat[3 * i + 2]
    out[i] = policy(o)

def heap_growth(calls):
    policy(o)
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(calls):
        policy(o)
    gc.collect()
    return gc.mem_alloc() - before


grown = heap_growth(1000) if hasattr(gc, "mem_alloc") else None
print(json.dumps({"actions": binascii.hexlify(bytes(out)).decode(), "grown": grown,
                  "extra": extra()}))
"""

DEVICE_HEADER = DEVICE_LOAD_ACTOR.replace("%", "%%") + """
from microrl.backend import NAME
from microrl.qactor import QActor
sizes = tuple(%(sizes)r)
qa = QActor(sizes)
qa.refresh(load_actor(sizes, %(weights)r))
policy = qa.policy
def extra():
    return NAME
"""

EXPORTED_HEADER = """
import sys, json
try:
    import microrl
    has_microrl = True
except ImportError:
    has_microrl = False
import policy as exported
policy = exported.policy
def extra():
    same = all(exported.act(obs_flat[3 * i], obs_flat[3 * i + 1], obs_flat[3 * i + 2])
               == out[i] for i in range(n))
    return {"has_microrl": has_microrl, "path": sys.path, "act_equals_policy": same,
            "file": exported.__file__ if hasattr(exported, "__file__") else None}
"""


def device_actions(tmp_path, sizes, params, obs, engine="micropython", backend="python"):
    weights = write_weights(tmp_path / "weights.bin", params)
    body = ACTIONS_SCRIPT % {
        "header": DEVICE_HEADER % {"sizes": list(sizes), "weights": weights},
        "obs": write_f64(tmp_path / "obs.bin", obs)}
    out = run_device(body, engine=engine, backend=backend)
    return from_hex(out["actions"]), out


def exported_actions(module_dir, obs_path, cwd):
    """Run the exported module under MicroPython with only `module_dir` on its path."""
    script = "import json\n" + ACTIONS_SCRIPT % {"header": EXPORTED_HEADER, "obs": obs_path}
    env = dict(os.environ, MICROPYPATH=str(module_dir))
    env.pop("MICRORL_BACKEND", None)
    proc = subprocess.run([micropython_path(), "-c", script], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return from_hex(out["actions"]), out


def microrl(*args):
    return subprocess.run([sys.executable, "-m", "microrl_host.cli", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A 64x64 actor trained 3000 steps by `microrl sim`, exported with `microrl export --mpy`."""
    run_dir = tmp_path_factory.mktemp("run")
    proc = microrl("sim", "--steps", "3000", "--seed", "2", "--set", "eval_every=3000",
                   "--set", "eval_episodes=1", "--out", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    proc = microrl("export", "--run", str(run_dir), "--mpy")
    assert proc.returncode == 0, proc.stderr
    assert "wrote %s" % (run_dir / "export" / "policy.py") in proc.stdout
    return run_dir


def test_export_alone_equals_device_and_mirror_exactly(trained_run, tmp_path):
    sizes, params = export.load_actor(trained_run / "actor.json")
    assert sizes == (3, 64, 64, 1)
    obs = observations(2000, seed=3)
    obs_path = write_f64(tmp_path / "obs.bin", obs)
    device, dev_out = device_actions(tmp_path, sizes, params, obs)
    assert dev_out["extra"] == "python"
    assert dev_out["grown"] == 0  # 1000 QActor.policy calls keep nothing on the heap
    # The exported source and its .mpy, each alone in a directory, run from an empty directory.
    (tmp_path / "py").mkdir()
    (tmp_path / "mpy").mkdir()
    (tmp_path / "cwd").mkdir()
    shutil.copy(trained_run / "export" / "policy.py", tmp_path / "py")
    shutil.copy(trained_run / "export" / "policy.mpy", tmp_path / "mpy")
    for kind in ("py", "mpy"):
        actions, out = exported_actions(tmp_path / kind, obs_path, tmp_path / "cwd")
        assert out["extra"]["has_microrl"] is False, out["extra"]["path"]
        assert out["extra"]["act_equals_policy"] is True
        assert out["grown"] == 0
        assert np.array_equal(actions, device), (kind, np.max(np.abs(actions - device)))
    # The mirror: exact, through TD3's refresh path and through the export's quantization.
    for qa in (mirror_qactor(sizes, params), export.quantize(sizes, params)):
        mirror = np.array([qa.policy(o) for o in obs])
        assert np.array_equal(mirror, device), np.max(np.abs(mirror - device))
    # The device code's ndarray forward (numpy standing in for ulab) gives the same bits.
    numpy_side, np_out = device_actions(tmp_path, sizes, params, obs, "cpython", "numpy")
    assert np_out["extra"] == "numpy"
    assert np.array_equal(numpy_side, device)
    assert np.all(np.abs(device) <= 1.0) and np.ptp(device) > 1.0  # real actions, not constants


@pytest.mark.parametrize("sizes, tweak", [
    ((3, 5, 7, 1), "dead_layer"),   # every first hidden unit below zero: the all-zero branch
    ((3, 16, 24, 8, 1), None),      # three hidden layers, three different fan-ins and levels
    ((3, 32, 32, 1), "zero_output"),  # an all-zero weight matrix: scale 0, action tanh(b)
])
def test_device_qactor_equals_mirror(tmp_path, sizes, tweak):
    params = random_params(sizes, seed=len(sizes) + sizes[1])
    if tweak == "dead_layer":
        params[1][:] = -100.0
    elif tweak == "zero_output":
        params[-2][:] = 0.0
    obs = observations(300, seed=5)
    device, out = device_actions(tmp_path, sizes, params, obs)
    assert out["grown"] == 0
    qa = mirror_qactor(sizes, params)
    mirror = np.array([qa.policy(o) for o in obs])
    assert np.array_equal(mirror, device), np.max(np.abs(mirror - device))
    if tweak == "zero_output":
        assert qa.scales[-1] == 0.0
        assert np.all(device == math.tanh(params[-1][0]))
    elif tweak == "dead_layer":
        assert np.all(device == device[0])  # the network ignores its input
    else:
        assert len(set(qa.levels)) == 4 and np.ptp(device) > 0.1


def test_int8_actions_within_bound_of_float_actor(trained_run):
    obs = observations(10000, seed=0)
    for name, sizes, params in (
            ("random 64x64", (3, 64, 64, 1), random_params((3, 64, 64, 1), seed=1)),
            ("trained 64x64",) + export.load_actor(trained_run / "actor.json")):
        qa = mirror_qactor(sizes, params)
        int8 = np.array([qa.policy(o) for o in obs])
        ref = float_actions(sizes, params, obs)[:, 0]
        diff = np.abs(int8 - ref)
        sigma = error_sigma(sizes, params, qa, obs)
        keep = sigma > 1e-6  # where tanh saturates in float64 the first-order model says 0
        ratio = diff[keep] / sigma[keep]
        print("%s: max |int8 - float| %.3e, model sigma max %.3e, ratio max %.2f rms %.2f"
              % (name, diff.max(), sigma.max(), ratio.max(), np.sqrt(np.mean(ratio ** 2))))
        assert diff.max() > 1e-4  # the weights really are rounded
        # The errors are what independent half-step rounding predicts: rms ratio near 1, none
        # beyond SIGMA_RATIO_MAX standard deviations, and ~0 where the model says ~0.
        assert 0.4 < np.sqrt(np.mean(ratio ** 2)) < 2.5
        assert ratio.max() < SIGMA_RATIO_MAX
        assert keep.sum() > 1000 and np.all(diff[~keep] < 1e-4)
        if name.startswith("random"):
            assert diff.max() < FLOAT_BOUND_RANDOM_64
    # What matters for acting: the trained policy's deterministic return barely moves.
    sizes, params = export.load_actor(trained_run / "actor.json")
    qa = mirror_qactor(sizes, params)
    returns = {}
    for label, policy in (("float", lambda o: float_actions(sizes, params, np.array([o]))[0, 0]),
                          ("int8", qa.policy)):
        rng = Rng(0, 1)
        total = 0.0
        for _ in range(5):
            env = Pendulum()
            obs1 = env.reset(rng)
            for _ in range(200):
                r = env.advance(policy(obs1) * MAX_TORQUE_NM)
                obs1 = env.observation()
                total += r
        returns[label] = total / 5
    print("evaluation return: float %.2f, int8 %.2f" % (returns["float"], returns["int8"]))
    assert abs(returns["int8"] - returns["float"]) <= 0.02 * abs(returns["float"])


WHOLE_RUN = dict(actor_hidden=[8, 8], critic_hidden=[8, 8], batch_size=8, buffer_capacity=2000,
                 learning_starts=400, total_steps=1400, eval_every=700, eval_episodes=2, seed=3,
                 act_int8=True)


def test_td3_act_int8_micropython_equals_mirror():
    _, mirror, _ = compare_whole_run(WHOLE_RUN, episodes=7)
    float_run = mirror_train(TD3Config(**dict(WHOLE_RUN, act_int8=False)), dtype=np.float64)
    # The int8 actor did act: past the warm-up the run leaves the float-actor run's path.
    moved = np.abs(np.subtract(mirror["episode_returns"], float_run["episode_returns"]))
    assert moved[:2].max() == 0.0 and moved.max() > 1e-3


def test_td3_acts_with_the_refreshed_qactor():
    config = TD3Config(actor_hidden=[16, 16], critic_hidden=[16, 16], batch_size=8,
                       buffer_capacity=100, learning_starts=10, policy_delay=1, act_int8=True)
    agent = TD3(config, Rng(4))
    assert TD3(TD3Config(), Rng(4)).qactor is None  # off by default
    obs = np.array([0.6, -0.8, 2.5])
    a = agent.act(obs, Rng(9), 10)
    noise = Rng(9).normal()
    assert a[0] == min(max(agent.qactor.policy(obs) + 0.1 * noise, -1.0), 1.0)
    assert a[0] != min(max(float(agent.actor.forward(obs, 1)[0, 0]) + 0.1 * noise, -1.0), 1.0)
    rng = Rng(2)
    for _ in range(20):
        agent.buffer.add(rng.normal_array(3), 0.5, -1.0, rng.normal_array(3), 0.0)
    before = [w.copy() for w in agent.qactor.weights_q]
    agent.train_step(rng)  # policy_delay 1: an actor update, so a refresh
    fresh = mirror_qactor(agent.actor.sizes, agent.actor.get_weights())
    assert any(not np.array_equal(b, w) for b, w in zip(before, agent.qactor.weights_q))
    for w, v in zip(agent.qactor.weights_q, fresh.weights_q):
        assert np.array_equal(w, v)
    assert agent.qactor.scales == fresh.scales


def test_sim_micropython_engine_writes_actor_json(tmp_path):
    small = ["--steps", "600", "--seed", "4", "--set", "actor_hidden=[8,8]",
             "--set", "critic_hidden=[8,8]", "--set", "batch_size=8",
             "--set", "learning_starts=300", "--set", "eval_every=600", "--set", "eval_episodes=1"]
    actors = {}
    for engine in ("numpy", "micropython"):
        proc = microrl("sim", "--engine", engine, *small, "--out", str(tmp_path / engine),
                       "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["files"]["actor"] == str(tmp_path / engine / "actor.json")
        actors[engine] = export.load_actor(tmp_path / engine / "actor.json")
    assert actors["numpy"][0] == actors["micropython"][0] == (3, 8, 8, 1)
    diff = max(np.max(np.abs(a - b)) for a, b in zip(actors["numpy"][1], actors["micropython"][1]))
    assert diff < 1e-9  # the same training on both engines


def _actor_doc(sizes=(3, 8, 8, 1)):
    return export.actor_document(sizes, random_params(sizes, seed=0))


@pytest.mark.parametrize("case, message", [
    ("missing", "no actor weights file"),
    ("not_json", "is not JSON"),
    ("run_json", "is not an actor weights file"),
    ("critic", "not a pendulum actor"),
    ("short_w2", "W2 must be a list of 64 numbers (shape 8x8), got 63 items"),
    ("layers", "params must hold 6 arrays"),
    ("nan", "b1 holds a value that is not finite"),
])
def test_export_bad_input(tmp_path, capsys, case, message):
    path = tmp_path / "actor.json"
    doc = _actor_doc()
    if case == "not_json":
        path.write_text("{not json")
    elif case == "run_json":
        path.write_text(json.dumps({"board": "unix", "episode_returns": []}))
    elif case == "critic":
        path.write_text(json.dumps(dict(_actor_doc((4, 8, 8, 1)), output_activation="linear")))
    elif case == "short_w2":
        doc["params"][2] = doc["params"][2][:-1]
        path.write_text(json.dumps(doc))
    elif case == "layers":
        doc["params"] = doc["params"][:4]
        path.write_text(json.dumps(doc))
    elif case == "nan":
        doc["params"][1][3] = float("nan")
        path.write_text(json.dumps(doc))
    out_dir = tmp_path / "out"
    assert cli.main(["export", "--weights", str(path), "--out", str(out_dir), "--mpy"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err, err
    assert err.startswith("microrl export: error: ")
    assert not out_dir.exists()  # nothing half-written


def test_export_defaults_and_good_input(tmp_path, capsys):
    path = tmp_path / "actor.json"
    path.write_text(json.dumps(_actor_doc()))
    assert cli.main(["export", "--weights", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == [str(tmp_path / "export" / "policy.py")]
    assert summary["weight_bytes"] == 3 * 8 + 8 * 8 + 8
    assert sorted(os.listdir(tmp_path / "export")) == ["policy.py"]  # no temporary left
    text = (tmp_path / "export" / "policy.py").read_text()
    assert "import microrl" not in text and "from microrl" not in text
    assert "def forward_py(" in text and "def act(cos, sin, thdot):" in text
