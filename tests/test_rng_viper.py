"""The viper PCG32 (device/microrl/rng_viper.py) against the host mirror's generator, draw for draw.

Under micropython with the viper backend ``microrl.rng.Rng`` is the machine-word generator; with the
pure-Python backend it stays the big-integer one. Both must give the mirror's numbers.
"""

import pytest

from devicerun import run_device
from microrl_host.mirror.rng import Rng

# Run by the device with its generator and by this test with the mirror's: ``r`` and ``count`` given.
DRAWS = """
out = []
for i in range(count):
    k = i % 5
    if k == 0:
        out.append(r.next_u32())
    elif k == 1:
        out.append(int(r.uniform() * 16777216))
    elif k == 2:
        out.append(r.normal())
    elif k == 3:
        out.append(r.below(i * 7919 % 100000 + 1))
    else:
        out.append(r.below(4294967295 - i))
"""
DEVICE_HEAD = "from microrl import rng\nr = rng.Rng(%d, %d)\ncount = %d\n"
DEVICE_TAIL = """
print(json.dumps({"machine_words": hasattr(r, "_w"), "state": [r._state, r._inc],
                  "draws": out}))
"""


def mirror_draws(seed, stream, count):
    scope = {"r": Rng(seed, stream), "count": count}
    exec(DRAWS, scope)
    return scope["out"], scope["r"]


@pytest.mark.parametrize("backend,machine_words", [("viper", True), ("python", False)])
@pytest.mark.parametrize("seed,stream", [(0, 0), (12345, 1), (2**63 + 11, 2**62 + 5)])
def test_device_generator_draws_the_mirror_numbers(backend, machine_words, seed, stream):
    count = 2000
    out = run_device(DEVICE_HEAD % (seed, stream, count) + DRAWS + DEVICE_TAIL, backend=backend)
    assert out["machine_words"] is machine_words
    expected, reference = mirror_draws(seed, stream, count)
    assert len(out["draws"]) == count
    # integers exactly (uniforms as their 24 bits); normals through each side's libm and repr
    ints = [i for i in range(count) if i % 5 != 2]
    assert [out["draws"][i] for i in ints] == [expected[i] for i in ints]
    normals = [i for i in range(count) if i % 5 == 2]
    assert max(abs(out["draws"][i] - expected[i]) for i in normals) < 1e-12
    assert out["state"] == [reference.state, reference.inc]


def test_state_words_round_trip_as_a_checkpoint_writes_them():
    out = run_device("""
from microrl import rng
a = rng.Rng(99, 4)
for _ in range(37):
    a.normal()
b = rng.Rng(0)
b._state, b._inc = a._state, a._inc
print(json.dumps([hasattr(b, "_w"), [a.next_u32() for _ in range(5)],
                  [b.next_u32() for _ in range(5)]]))
""", backend="viper")
    machine_words, from_a, from_b = out
    assert machine_words
    assert from_a == from_b
    reference = Rng(99, 4)
    for _ in range(37):
        reference.normal()
    assert from_a == [reference.next_u32() for _ in range(5)]
