"""The device package checked against the references: gymnasium's Pendulum-v1 and PyTorch.

Each scenario runs the unmodified device code under the `micropython` command (pure-Python backend)
and under CPython with numpy standing in for ulab.
"""

import math

import numpy as np
import pytest
import torch

from devicerun import run_device

ENGINES = [("micropython", None), ("cpython", "numpy")]
ENGINE_IDS = ["micropython", "cpython-numpy"]

PENDULUM_SCRIPT = """
from microrl.pendulum import Pendulum
from microrl.rng import Rng
rng = Rng(7)
env = Pendulum()
rows = []
for t in range(1000):
    if t % 200 == 0:
        env.reset(rng)
        rows.append(["reset", env.th, env.thdot])
    torque_nm = 6.0 * rng.uniform() - 3.0
    reward = env.advance(torque_nm)
    rows.append([torque_nm, reward, [env.obs[0], env.obs[1], env.obs[2]]])
print(json.dumps(rows))
"""


@pytest.mark.parametrize("engine,backend", ENGINES, ids=ENGINE_IDS)
def test_rng_known_vector(engine, backend):
    out = run_device("from microrl.rng import Rng\nr = Rng(42, 54)\n"
                     "print(json.dumps([r.next_u32() for _ in range(6)]))",
                     engine=engine, backend=backend)
    assert out == [0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]


@pytest.mark.parametrize("engine,backend", ENGINES, ids=ENGINE_IDS)
def test_pendulum_matches_gymnasium(engine, backend):
    import gymnasium

    rows = run_device(PENDULUM_SCRIPT, engine=engine, backend=backend)
    env = gymnasium.make("Pendulum-v1").unwrapped
    env.reset(seed=0)
    steps = 0
    worst = 0.0
    for row in rows:
        if row[0] == "reset":
            env.state = np.array([row[1], row[2]])
            continue
        torque_nm, reward, obs = row
        ref_obs, ref_reward, terminated, truncated, _ = env.step(np.array([torque_nm]))
        worst = max(worst, float(np.max(np.abs(np.asarray(obs) - ref_obs))),
                    abs(reward - float(ref_reward)))
        assert not terminated
        steps += 1
    assert steps == 1000
    assert sum(abs(r[0]) > 2.0 for r in rows if r[0] != "reset") > 100  # clipping exercised
    assert worst < 1e-5, worst


MLP_SCRIPT = """
from microrl.backend import K
from microrl.mlp import MLP
from microrl.adam import Adam
from microrl.rng import Rng

def tolist(m):
    rows, cols = K.shape(m)
    return [[K.get(m, i, j) for j in range(cols)] for i in range(rows)]

def filled(rows, cols, rng):
    m = K.matrix(rows, cols)
    K.fill_uniform(m, rng, 1.0)
    return m

rng = Rng(3)
out = {}
for act, sizes in (("tanh", (3, 5, 4, 2)), ("linear", (4, 6, 1))):
    net = MLP(sizes, act, 8, rng)
    x = filled(8, sizes[0], rng)
    dy = filled(8, sizes[-1], rng)
    weights = [tolist(p) for p in net.params]
    y = tolist(net.forward(x, 7))
    dy_list = tolist(dy)
    dx = tolist(net.backward(dy, 7))
    grads = [tolist(g) for g in net.grads]
    adam = Adam(net.params, net.grads, 0.01)
    adam_dy = tolist(filled(8, sizes[-1], Rng(11)))
    for _ in range(10):
        K.copy(dy, filled(8, sizes[-1], Rng(11)))
        net.forward(x, 7)
        net.backward(dy, 7, True, False)
        adam.step()
    out[act] = {"weights": weights, "x": tolist(x), "dy": dy_list, "y": y, "dx": dx,
                "grads": grads, "adam_dy": adam_dy, "after_adam": [tolist(p) for p in net.params]}
print(json.dumps(out))
"""


def _torch_net(weights, act):
    layers = [(torch.tensor(w, dtype=torch.float64, requires_grad=True),
               torch.tensor(b, dtype=torch.float64, requires_grad=True))
              for w, b in zip(weights[::2], weights[1::2])]

    def forward(x):
        h = x
        for k, (w, b) in enumerate(layers):
            h = h @ w + b
            if k < len(layers) - 1:
                h = torch.relu(h)
        return torch.tanh(h) if act == "tanh" else h

    return layers, forward


@pytest.mark.parametrize("engine,backend", ENGINES, ids=ENGINE_IDS)
def test_mlp_gradients_and_adam_match_torch(engine, backend):
    out = run_device(MLP_SCRIPT, engine=engine, backend=backend)
    for act, case in out.items():
        layers, forward = _torch_net(case["weights"], act)
        n = 7
        x = torch.tensor(case["x"][:n], dtype=torch.float64, requires_grad=True)
        dy = torch.tensor(case["dy"][:n], dtype=torch.float64)
        y = forward(x)
        np.testing.assert_allclose(case["y"][:n], y.detach().numpy(), atol=1e-12)
        (y * dy).sum().backward()
        np.testing.assert_allclose(case["dx"][:n], x.grad.numpy(), atol=1e-6, rtol=0)
        torch_grads = [t.grad.numpy() for pair in layers for t in pair]
        for mine, ref in zip(case["grads"], torch_grads):
            np.testing.assert_allclose(mine, ref, atol=1e-6, rtol=0)
        # Central finite differences on a few parameters of every layer.
        def loss(ws):
            _, f = _torch_net(ws, act)
            with torch.no_grad():
                return float((f(x.detach()) * dy).sum())
        for li, w in enumerate(case["weights"]):
            for (i, j) in ((0, 0), (len(w) - 1, len(w[0]) - 1)):
                plus = [np.array(a, dtype=np.float64) for a in case["weights"]]
                minus = [np.array(a, dtype=np.float64) for a in case["weights"]]
                plus[li][i, j] += 1e-6
                minus[li][i, j] -= 1e-6
                fd = (loss([p.tolist() for p in plus]) - loss([m.tolist() for m in minus])) / 2e-6
                assert abs(fd - case["grads"][li][i][j]) < 1e-6
        # Ten Adam steps against torch.optim.Adam.
        layers, forward = _torch_net(case["weights"], act)
        opt = torch.optim.Adam([t for pair in layers for t in pair], lr=0.01)
        adam_dy = torch.tensor(case["adam_dy"][:n], dtype=torch.float64)
        for _ in range(10):
            opt.zero_grad()
            (forward(x.detach()) * adam_dy).sum().backward()
            opt.step()
        for mine, ref in zip(case["after_adam"], [t.detach().numpy() for p in layers for t in p]):
            np.testing.assert_allclose(mine, ref, atol=1e-6, rtol=0)


CONFIG_ERRORS = [
    ({"batch_size": 0}, "batch_size"),
    ({"buffer_capacity": -5}, "buffer_capacity"),
    ({"actor_hidden": [32, 0]}, "actor_hidden"),
    ({"critic_hidden": []}, "critic_hidden"),
    ({"batch_size": 64, "buffer_capacity": 32}, "batch_size"),
    ({"tau": 0.0}, "tau"),
    ({"gamma": 1.5}, "gamma"),
    ({"policy_delay": 0}, "policy_delay"),
    ({"bogus_field": 1}, "bogus_field"),
]


@pytest.mark.parametrize("engine,backend", ENGINES, ids=ENGINE_IDS)
def test_bad_config_names_the_field(engine, backend):
    body = """
from microrl.config import TD3Config
from microrl.mlp import MLP
cases = %r
out = []
for kw, _ in cases:
    try:
        TD3Config(**kw)
        out.append(None)
    except ValueError as e:
        out.append(str(e))
for args in (((3, 4, 1), "softmax", 8), ((3, 0, 1), "tanh", 8), ((3, 4, 1), "tanh", 0)):
    try:
        MLP(*args)
        out.append(None)
    except ValueError as e:
        out.append(str(e))
print(json.dumps(out))
""" % (CONFIG_ERRORS,)
    out = run_device(body, engine=engine, backend=backend)
    for (kw, field), message in zip(CONFIG_ERRORS, out):
        assert message is not None and field in message, (kw, message)
    assert "output_activation" in out[-3] and "softmax" in out[-3]
    assert "sizes" in out[-2]
    assert "max_batch" in out[-1]


MEMORY_SCRIPT = """
import gc
from microrl.config import TD3Config
from microrl.train import Trainer
config = TD3Config(actor_hidden=(32, 32), critic_hidden=(32, 32), batch_size=32,
                   buffer_capacity=2000, learning_starts=100)
trainer = Trainer(config)
for _ in range(config.learning_starts):
    trainer.step()
gc.collect()
built_bytes = gc.mem_alloc()
print("after construction and warm-up: gc.mem_alloc() =", built_bytes)
live = []
for updates in (10, 60):
    while trainer.agent.critic_updates < updates:
        trainer.step()
    gc.collect()
    live.append(gc.mem_alloc())
    print("after %d updates: gc.mem_alloc() =" % updates, live[-1])
print(json.dumps({"built": built_bytes, "trained": live[-1], "live": live, "free": gc.mem_free(),
                  "updates": trainer.agent.critic_updates}))
"""


def test_memory_fits_256k_heap_and_does_not_grow():
    """A nearly full heap collects at almost every allocation (about 0.18 s per update here):
    60 updates show what 200 did, live memory flat after the first few."""
    out = run_device(MEMORY_SCRIPT, heap="256K", float_bits=32, precompiled=True)
    print("32x32 networks, batch 32, 2000-transition buffer:", out)
    assert out["updates"] == 60
    assert out["built"] < 256 * 1024
    after_10, after_60 = out["live"]
    assert after_60 - after_10 <= 128  # 50 more updates: no growth beyond collection noise
    # Training allocates only transient floats: live memory may not grow by more than 1 KB.
    assert out["trained"] - out["built"] <= 1024
