"""Device modules of the board link, run under `micropython`: the weights blob, the bounded line
reader, the .mpy version decoding, the settings file, and the benchmark harness."""

import json
import zlib

import pytest

from devicerun import run_device

WEIGHTS_SCRIPT = """
from microrl import weights
from microrl.backend import K
from microrl.mlp import MLP
from microrl.rng import Rng
net = MLP((3, 5, 4, 1), "tanh", 2, Rng(1))
other = MLP((3, 5, 4, 1), "tanh", 2, Rng(2))
blob = weights.pack(net.params)
weights.unpack_into(other.params, blob)
same = all(K.get(p, i, j) == K.get(q, i, j) for p, q in zip(net.params, other.params)
           for i in range(K.shape(p)[0]) for j in range(K.shape(p)[1]))
text, crc = weights.encode_chunk(blob[:50])
fast = weights.crc32(blob)
weights._crc32 = None
slow = weights.crc32(blob)
errors = []
for bad in (blob[:-1], b"XXXX" + blob[4:], blob[:8] + b"\\x09" + blob[9:]):
    try:
        weights.unpack_into(other.params, bad)
    except weights.WeightsError as e:
        errors.append(str(e))
try:
    weights.decode_chunk(text, crc ^ 1)
except weights.WeightsError as e:
    errors.append(str(e))
print(json.dumps({"blob": list(blob), "same": same, "text": text, "crc": crc, "fast": fast,
                  "slow": slow, "sizes": weights.layer_sizes(net.params), "errors": errors}))
"""


def test_weights_blob_layout_crc_and_checks():
    out = run_device(WEIGHTS_SCRIPT)
    blob = bytes(out["blob"])
    itemsize = 8 if blob[5:6] == b"d" else 4  # float64 storage, or a float32 (ulab) build
    assert blob[:8] == b"MRLW\x01" + (b"d" if itemsize == 8 else b"f") + b"\x04\x00"
    assert out["sizes"] == [3, 5, 4, 1]
    assert len(blob) == 8 + 2 * 4 + itemsize * (15 + 5 + 20 + 4 + 4 + 1)
    assert out["same"] is True
    assert out["fast"] == out["slow"] == zlib.crc32(blob)
    assert out["crc"] == zlib.crc32(blob[:50])
    assert [e.split(":")[0].split(" (")[0] for e in out["errors"]] == [
        "weights blob is %d bytes, expected %d" % (len(blob) - 1, len(blob)),
        "not a microrl weights blob",
        "weights are for layer sizes [9, 5, 4, 1], this actor has [3, 5, 4, 1]",
        "chunk CRC32 mismatch"]


LINES_SCRIPT = """
import io
from microrl.lineio import LineReader
r = LineReader(16, io.BytesIO(b"short\\n" + b"y" * 40 + b"\\nafter\\n\\x03rest\\n"))
out = []
for _ in range(3):
    line = r.read_line()
    out.append([line.decode(), r.dropped_bytes])
try:
    r.read_line()
except KeyboardInterrupt:
    out.append("interrupt")
out.append(r.read_line().decode())
try:
    r.read_line()
except EOFError:
    out.append("eof")
print(json.dumps(out))
"""


def test_line_reader_bounds_lines_and_honours_ctrl_c():
    assert run_device(LINES_SCRIPT) == [["short", 0], ["y" * 16, 24], ["after", 0], "interrupt",
                                        "rest", "eof"]


def test_mpy_decoding():
    out = run_device("from microrl.sysinfo import decode_mpy, describe\n"
                     "print(json.dumps([decode_mpy(2822), decode_mpy(6 | 2 << 8 | 4 << 10),"
                     " decode_mpy(6 | 10 << 10), describe()['mpy']]))")
    assert out[0] == {"raw": 2822, "version": 6, "sub": 3, "arch": "x64"}
    assert out[1]["arch"] == "armv6m" and out[1]["sub"] == 2
    assert out[2]["arch"] == "xtensawin"
    assert out[3]["version"] == 6


@pytest.mark.parametrize("content,message", [
    ({"mode": "fly"}, "mode must be serve or train"),
    ({"mood": "serve"}, "unknown key 'mood'"),
    ({"vfp": "yes"}, "vfp must be true or false, got 'yes'"),
    ({"asm": 0}, "asm must be true or false, got 0"),
    ([1, 2], "must hold a JSON object"),
])
def test_bad_settings_file_is_an_error(tmp_path, content, message):
    path = tmp_path / "microrl.json"
    path.write_text(json.dumps(content))
    out = run_device("from microrl.app import load_settings\n"
                     "try:\n    load_settings(%r)\nexcept ValueError as e:\n"
                     "    print(json.dumps(str(e)))\n" % str(path))
    assert message in out


BENCH_SCRIPT = """
from microrl import bench
from microrl.config import TD3Config
from microrl.rng import Rng
from microrl.train import Trainer
trainer = Trainer(TD3Config(actor_hidden=(4,), critic_hidden=(4,), batch_size=4,
                            buffer_capacity=50, learning_starts=20))
rng = Rng(0, 3)
results = [bench.measure(name, trainer, rng, 5) for name in bench.NAMES]
calls = [0]
def drifting(trainer, rng):
    def run():
        calls[0] += 1
        return calls[0]
    return run, True
def garbage(blocks):
    def setup(trainer, rng):
        def run():
            for _ in range(blocks):
                bytearray(1000)
            return blocks
        return run, True
    return setup
bench.BENCHMARKS["drifting"] = drifting
bench.BENCHMARKS["garbage10"] = garbage(10)
bench.BENCHMARKS["garbage1000"] = garbage(1000)
try:
    bench.measure("drifting", trainer, rng, 3)
    error = None
except bench.BenchError as e:
    error = str(e)
print(json.dumps({"results": results, "error": error, "buffer": trainer.agent.buffer.size,
                  "steps": trainer.steps, "critic_updates": trainer.agent.critic_updates,
                  "small": bench.measure("garbage10", trainer, rng, 3),
                  "large": bench.measure("garbage1000", trainer, rng, 3)}))
"""


def test_bench_harness_reports_and_rejects_a_changing_result():
    out = run_device(BENCH_SCRIPT, heap="512K")
    assert [r["name"] for r in out["results"]] == [
        "actor_forward", "td3_update", "critic_update", "full_update", "trainer_step", "env_step",
        "replay_sample"]
    for r in out["results"]:
        assert r["repeat"] == 5 and 0 <= r["min_us"] <= r["median_us"] <= r["max_us"]
        assert r["min_us"] <= r["mean_us"] <= r["max_us"]
        assert r["alloc_bytes"] >= 0 and r["alloc_error"] is None
        assert 0 < r["heap_free_bytes"] <= r["alloc_free_bytes"] + 1024
        assert r["learner_free_bytes"] > 0
    # 7 + 7 + 7 updates (warm-up, allocation and 5 timed runs each), 7 more in trainer_step
    assert out["critic_updates"] == 28
    assert out["steps"] == 20 + 7  # warm-up to learning_starts, then one step per run
    assert out["buffer"] == 4 + 20 + 7  # one batch of random rows for td3_update, then the steps
    assert out["error"] == "drifting changed its result: 1 then 2"
    # collection disabled: ten 1000-byte arrays are counted in full (plus their headers)
    assert 10 * 1000 <= out["small"]["alloc_bytes"] <= 10 * 1100
    # a million bytes of garbage do not fit in a 512K heap without collections
    large = out["large"]
    assert large["alloc_bytes"] is None and large["median_us"] >= 0
    assert large["alloc_error"] == ("not measurable: with collection disabled one run needs more "
                                    "than the %d bytes free" % large["alloc_free_bytes"])


HEAP_FULL_SCRIPT = """
from microrl import bench
def run():
    chain = None
    while True:  # one-block objects until none is left: the heap full to its last block
        chain = (chain,)
alloc, free, why = bench._allocation(run, lambda result: None)
print(json.dumps([alloc, free, why]))
"""


def test_allocation_of_a_run_that_fills_the_heap_to_its_last_block_is_reported_not_raised():
    """With collection disabled the run takes every block; the message that says so is built
    after collection is back (building it first raised MemoryError itself)."""
    alloc, free, why = run_device(HEAP_FULL_SCRIPT, heap="128K")
    assert alloc is None
    assert 50000 < free < 131072
    assert why == ("not measurable: with collection disabled one run needs more than the %d "
                   "bytes free" % free)
