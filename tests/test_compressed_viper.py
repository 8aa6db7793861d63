"""The viper decode of compressed replay (device/microrl/compressed_viper.py) against the Python
decode it replaces, batch for batch and bit for bit.

The ulab backend uses it; CI has no ulab, so these tests run it on the viper backend of the unix
MicroPython, on double and on single-precision storage, with the pendulum (bounds symmetric about
zero: no centre) and with an environment whose bounds have centres, through terminal steps,
truncated episodes and a buffer that wraps.
"""

import pytest

from devicerun import run_device

# Fills a fast and a Python replay with the same steps, then samples both with equal generators.
SCRIPT = """
from microrl import compressed
from microrl import compressed_viper
from microrl.batch import Batch
from microrl.rng import Rng


class Offset:
    # bounds with centres (1.5, -3) and a reward range not ending at 0
    obs_dim, act_dim = 2, 2
    obs_low = (-1.0, -10.0)
    obs_high = (4.0, 4.0)
    reward_range = (-7.5, 2.5)


def env_named(name):
    if name == "offset":
        return Offset()
    from microrl.envs import make
    return make(name)


env = env_named(%(env)r)
od, ad = env.obs_dim, env.act_dim
cap = %(capacity)d
fast = compressed_viper.CompressedReplay(cap, env)
slow = compressed_viper._PyReplay(cap, env)
r = Rng(3)
for t in range(%(steps)d):
    obs = [env.obs_low[j] + (env.obs_high[j] - env.obs_low[j]) * r.uniform() for j in range(od)]
    nxt = [env.obs_low[j] + (env.obs_high[j] - env.obs_low[j]) * r.uniform() for j in range(od)]
    act = [2.0 * r.uniform() - 1.0 for j in range(ad)]
    low, high = env.reward_range
    reward = low + (high - low) * r.uniform()
    done = t %% 13 == 12
    end = t %% 41 == 40
    for b in (fast, slow):
        b.add(obs, act, reward, nxt, done, end)
names = ("obs_d", "sa_d", "next_obs_d", "reward_d", "done_d")
mismatches = 0
dones = 0
values = []
for seed in range(4):
    b1 = Batch(16, od, ad)
    b2 = Batch(16, od, ad)
    r1 = Rng(seed)
    r2 = Rng(seed)
    for rep in range(3):
        n = 16 - 5 * rep
        fast.sample(r1, n, b1)
        slow.sample(r2, n, b2)
        for name in names:
            x, y = getattr(b1, name), getattr(b2, name)
            width = len(x) // 16
            for i in range(n * width):
                if x[i] != y[i]:
                    mismatches += 1
        x, y = b1.next_sa_d, b2.next_sa_d  # its actions are the smoothing's, not the replay's
        for i in range(n):
            for j in range(od):
                if x[i * (od + ad) + j] != y[i * (od + ad) + j]:
                    mismatches += 1
        dones += sum(1 for i in range(n) if b1.done_d[i] == 1.0)
        values.append([b1.sa_d[k] for k in range(od + ad)] + [b1.reward_d[0]])
print(json.dumps({"mismatches": mismatches, "dones": dones, "values": values,
                  "replay": compressed.CompressedReplay is compressed_viper.CompressedReplay,
                  "draws_equal": r1.next_u32() == r2.next_u32()}))
"""


@pytest.mark.parametrize("float_bits", [64, 32])
@pytest.mark.parametrize("env,capacity,steps", [("pendulum", 300, 450), ("offset", 120, 200)])
def test_viper_decode_gives_the_python_decode_bit_for_bit(float_bits, env, capacity, steps):
    out = run_device(SCRIPT % {"env": env, "capacity": capacity, "steps": steps},
                     backend="viper", float_bits=float_bits)
    assert out["mismatches"] == 0
    assert out["draws_equal"]  # both consumed the same numbers
    assert out["dones"] > 0  # terminal steps were drawn
    # decoded values are real ones: signed observations and actions, rewards inside the range
    flat = [v for row in out["values"] for v in row[:-1]]
    assert min(flat) < 0 < max(flat)
    assert len(set(flat)) > len(flat) // 2
    low, high = (-16.3, 0.0) if env == "pendulum" else (-7.5, 2.5)
    assert all(low - 1e-3 <= row[-1] <= high + 1e-3 for row in out["values"])
    assert out["replay"] is False  # the viper backend keeps the Python decode (see compressed.py)


def test_viper_decode_refuses_what_the_python_one_refuses():
    out = run_device("""
from microrl import compressed
from microrl import compressed_viper
from microrl.batch import Batch
from microrl.envs import make
from microrl.rng import Rng
b = compressed_viper.CompressedReplay(10, make("pendulum"))
try:
    b.sample(Rng(1), 4, Batch(4, 3, 1))
    error = None
except ValueError as e:
    error = str(e)
print(json.dumps({"error": error}))
""", backend="viper")
    assert out["error"] == "cannot sample: the buffer holds 0 steps"
