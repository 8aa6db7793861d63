"""Checkpoints and resume under `micropython`: a resumed run ends bit for bit where the
uninterrupted run ends, also when the interpreter is killed at random moments while it writes
checkpoints; a corrupted slot is skipped and reported; resuming without a checkpoint is an error."""

import json
import os
import random
import subprocess
import time

import pytest

from devicerun import DEVICE_DIR, micropython_path, run_device
from microrl_host.board.boards import load_profile

# Small and fast: a run of 120 steps takes about 0.1 s on the desktop interpreter.
TINY = {"actor_hidden": [8], "critic_hidden": [8], "batch_size": 8, "buffer_capacity": 64,
        "learning_starts": 10, "episode_steps": 25, "eval_every": 0, "eval_episodes": 1,
        "total_steps": 120, "seed": 5}
# Every piece of state a checkpoint holds: compressed replay, the sum tree, int16 Adam, int8 actor.
EVERYTHING = dict(TINY, replay="compressed", prioritized=True, adam_state="int16", act_int8=True,
                  micro_batch=3)

# Trains ``config`` in ``cwd`` (resuming first when ``resume``), then dumps the whole state with
# replay into final0.bin (afresh: seq 1) and prints the actor's and critics' weight bytes.
RUN = """
import os
os.chdir(%r)
from microrl.checkpoint import Checkpointer, resume
from microrl.config import TD3Config
from microrl.train import Trainer, train
from microrl import weights
c = TD3Config(**%r)
t = Trainer(c)
info = resume(t) if %r else None
train(c, trainer=t)
for name in ("final0.bin", "final1.bin"):
    try:
        os.remove(name)
    except OSError:
        pass
final = Checkpointer(t, replay=True, paths=("final0.bin", "final1.bin"))
final.save()
a = t.agent
print(json.dumps({"info": info, "steps": t.steps, "episodes": t.episodes,
                  "critic_updates": a.critic_updates, "actor": weights.pack(a.actor.params).hex(),
                  "critics": (weights.pack(a.critic1.params)
                              + weights.pack(a.critic2.params)).hex()}))
"""


def _run(cwd, config, resume=False, engine="micropython", backend=None):
    return run_device(RUN % (str(cwd), config, resume), engine=engine, backend=backend,
                      timeout_s=120)


def _final(cwd):
    return (cwd / "final0.bin").read_bytes()


@pytest.mark.parametrize("config, engine, backend", [
    (TINY, "micropython", None), (EVERYTHING, "micropython", None),
    (dict(EVERYTHING, act_int8=False), "micropython", "viper"),  # (no int8 actor on viper)
    (EVERYTHING, "cpython", None)],
    ids=["float", "everything", "viper", "numpy"])
def test_resumed_run_ends_with_the_uninterrupted_runs_weights(tmp_path, config, engine, backend):
    run = {"engine": engine, "backend": backend}
    whole = tmp_path / "whole"
    parts = tmp_path / "parts"
    whole.mkdir()
    parts.mkdir()
    reference = _run(whole, config, **run)  # no checkpoints at all
    assert not (whole / "ckpt0.bin").exists()
    checkpointed = dict(config, checkpoint_every=7, checkpoint_replay=True)
    first = _run(parts, dict(checkpointed, total_steps=50), **run)
    assert first["steps"] == 50 and first["actor"] != reference["actor"]
    resumed = _run(parts, checkpointed, resume=True, **run)
    assert resumed["info"]["steps"] == 49 and resumed["info"]["seq"] == 7  # 49 = 7 * 7
    assert resumed["info"]["skipped"] == []
    assert resumed["steps"] == reference["steps"] == 120
    assert resumed["episodes"] == reference["episodes"] == 4
    assert resumed["critic_updates"] == reference["critic_updates"] == 110
    assert resumed["actor"] == reference["actor"]
    assert resumed["critics"] == reference["critics"]
    assert _final(parts) == _final(whole)  # every byte of the state, the replay buffer included


def test_resume_without_replay_refills_the_buffer_before_updating(tmp_path):
    config = dict(TINY, checkpoint_every=20)
    _run(tmp_path, dict(config, total_steps=40))
    assert (tmp_path / "ckpt0.bin").stat().st_size < (tmp_path / "final0.bin").stat().st_size
    resumed = _run(tmp_path, config, resume=True)
    assert resumed["info"]["steps"] == 40
    # Updates resume after learning_starts (10) steps of refilling: 120 - 40 - 10 = 70 more.
    assert resumed["critic_updates"] == 30 + 70


SIZES = """
from microrl.checkpoint import Checkpointer
from microrl.config import TD3Config
from microrl.train import Trainer
from microrl.clock import ticks_ms, elapsed_s
import os
os.chdir(%r)
out = {}
for replay in (False, True):
    t = Trainer(TD3Config(**%r))
    ck = Checkpointer(t, replay=replay)
    start = ticks_ms()
    for _ in range(3):
        ck.save()
    out["replay" if replay else "state"] = [ck.file_bytes, elapsed_s(start) / 3]
    t = None
print(json.dumps(out))
"""


def _floats(sizes):
    return sum(sizes[k] * sizes[k + 1] + sizes[k + 1] for k in range(len(sizes) - 1))


@pytest.mark.parametrize("board", ["default", "rp2-pico"])
def test_checkpoint_size_per_board_profile(tmp_path, board):
    learner = {} if board == "default" else dict(load_profile(board).learner)
    float_bits = 32 if board == "rp2-pico" else None
    got = run_device(SIZES % (str(tmp_path), learner), float_bits=float_bits, heap="64M",
                     timeout_s=300)
    hidden_a = learner.get("actor_hidden", [64, 64])
    hidden_c = learner.get("critic_hidden", [64, 64])
    params = _floats([3] + list(hidden_a) + [1]) + 2 * _floats([4] + list(hidden_c) + [1])
    float_bytes = 4 if float_bits == 32 else 8
    # Six networks and two moments per parameter, 80 bytes of counters, the pendulum's two
    # float64s, a 24-byte header.
    state = 24 + 80 + 16 + 4 * params * float_bytes
    capacity = learner.get("buffer_capacity", 10000)
    row_bytes = 10 if learner.get("replay") == "compressed" else 36
    assert got["state"][0] == state
    assert got["replay"][0] == state + capacity * row_bytes
    if board == "default":
        assert state == 434392 and got["replay"][0] == 794392
    else:
        assert state == 10920 and got["replay"][0] == 30920
    print("%s: %d bytes (%.3f s), with replay %d bytes (%.3f s)"
          % (board, got["state"][0], got["state"][1], got["replay"][0], got["replay"][1]))


CORRUPT = """
import os
os.chdir(%r)
from microrl.checkpoint import resume
from microrl.config import TD3Config
from microrl.train import Trainer
c = TD3Config(**%r)
t = Trainer(c)
print(json.dumps(resume(t)))
"""


def test_corrupted_slot_is_skipped_and_reported(tmp_path):
    config = dict(TINY, checkpoint_every=10, checkpoint_replay=True, total_steps=60)
    _run(tmp_path, config)
    slot0, slot1 = tmp_path / "ckpt0.bin", tmp_path / "ckpt1.bin"
    # Six checkpoints: seq 6 (step 60) is in slot 1, seq 5 (step 50) in slot 0.
    assert run_device(CORRUPT % (str(tmp_path), config))["steps"] == 60
    data = bytearray(slot1.read_bytes())
    data[1000] ^= 0x10  # one flipped bit in the payload
    slot1.write_bytes(bytes(data))
    got = run_device(CORRUPT % (str(tmp_path), config))
    assert got["file"] == "ckpt0.bin" and got["seq"] == 5 and got["steps"] == 50
    assert len(got["skipped"]) == 1 and got["skipped"][0][0] == "ckpt1.bin"
    assert "payload CRC32 mismatch" in got["skipped"][0][1]
    slot0.write_bytes(slot0.read_bytes()[:3000])  # a write cut short: neither slot is valid
    with pytest.raises(RuntimeError, match="no valid checkpoint to resume from: ckpt0.bin: cut "
                                           "short.*; ckpt1.bin: payload CRC32 mismatch"):
        run_device(CORRUPT % (str(tmp_path), config))


def test_resume_with_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="CheckpointError: no valid checkpoint to resume from: "
                                           "ckpt0.bin: missing; ckpt1.bin: missing"):
        run_device(CORRUPT % (str(tmp_path), TINY))
    config = dict(TINY, checkpoint_every=10, checkpoint_replay=True, total_steps=30)
    _run(tmp_path, config)
    other = dict(config, batch_size=4)  # another learner: the checkpoint does not fit it
    with pytest.raises(RuntimeError, match="ckpt0.bin: made with another config"):
        run_device(CORRUPT % (str(tmp_path), other))


# Trains with a checkpoint after every step and says so after the first; the test kills it.
KILLED = """
import sys
sys.path.insert(0, %r)
from microrl.config import TD3Config
from microrl.train import Trainer
c = TD3Config(**%r)
t = Trainer(c)
t.step()
print("saved")
while t.steps < c.total_steps:
    t.step()
print("done")
"""


def test_random_kills_during_checkpoint_writes_resume_bit_for_bit(tmp_path):
    """Until 50 kills: train with a checkpoint per step, SIGKILL the interpreter after a random
    delay, boot again and resume; each resumed run ends with the uninterrupted run's state, every
    byte."""
    config = dict(TINY, buffer_capacity=400, checkpoint_every=1, checkpoint_replay=True)
    (tmp_path / "whole").mkdir()
    assert _run(tmp_path / "whole", config)["steps"] == 120
    reference = _final(tmp_path / "whole")
    rng = random.Random(12)
    start = time.monotonic()
    run_s = None
    kills = torn = attempts = 0
    while kills < 50 and attempts < 100:
        attempts += 1
        cwd = tmp_path / ("kill%d" % attempts)
        cwd.mkdir()
        began = time.monotonic()
        proc = subprocess.Popen([micropython_path(), "-c", KILLED % (str(DEVICE_DIR), config)],
                                cwd=cwd, stdout=subprocess.PIPE, env=dict(os.environ,
                                                                          MICRORL_BACKEND="python"))
        try:
            assert proc.stdout.readline() == b"saved\n"
            if run_s is None:  # the first run goes to its end: how long a whole run takes
                assert proc.stdout.readline() == b"done\n"
                run_s = time.monotonic() - began
            else:
                time.sleep(rng.uniform(0.0, 0.8 * run_s))
                proc.kill()
        finally:
            proc.wait(timeout=60)
        kills += proc.returncode == -9  # else it ended before the kill: resumed all the same
        resumed = _run(cwd, config, resume=True)
        torn += bool(resumed["info"]["skipped"])
        assert resumed["info"]["steps"] >= 1 and resumed["steps"] == 120
        assert _final(cwd) == reference, "run %d: resumed from step %d" % (
            attempts, resumed["info"]["steps"])
    seconds = time.monotonic() - start
    print("%d kills in %d runs: %d torn slots skipped, %.1f s" % (kills, attempts, torn, seconds))
    assert kills == 50 and torn >= 1


BOOT = ("import sys\nsys.path.insert(0, %r)\nfrom microrl.app import main\nmain()\n"
        % str(DEVICE_DIR))


def _boot(cwd, settings):
    """Boot the board in train mode with ``settings``: (its JSON lines, all it printed)."""
    (cwd / "microrl.json").write_text(json.dumps(dict(settings, mode="train")))
    proc = subprocess.run([micropython_path(), "-c", BOOT], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, MICRORL_BACKEND="python"))
    lines = proc.stdout.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")], proc.stdout + proc.stderr


def test_train_mode_resumes_at_boot(tmp_path):
    config = dict(TINY, checkpoint_every=10, checkpoint_replay=True)
    (tmp_path / "whole").mkdir()
    (tmp_path / "parts").mkdir()
    whole, _ = _boot(tmp_path / "whole", {"config": config, "resume": False})
    assert [e["event"] for e in whole if e["event"] != "episode"] == ["done"]
    first, _ = _boot(tmp_path / "parts", {"config": config, "steps": 60})
    assert first[0] == {"event": "fresh", "why": "no valid checkpoint to resume from: ckpt0.bin: "
                                                 "missing; ckpt1.bin: missing"}
    second, _ = _boot(tmp_path / "parts", {"config": config})
    assert second[0] == {"event": "resumed", "file": "ckpt1.bin", "seq": 6, "steps": 60,
                         "skipped": []}
    assert second[-1]["steps"] == whole[-1]["steps"] == 120
    assert (tmp_path / "parts" / "actor.bin").read_bytes() == \
        (tmp_path / "whole" / "actor.bin").read_bytes()


def test_train_mode_resume_true_without_checkpoint_is_an_error(tmp_path):
    lines, stderr = _boot(tmp_path, {"config": dict(TINY, checkpoint_every=10), "resume": True})
    assert lines == []
    assert "CheckpointError: no valid checkpoint to resume from: ckpt0.bin: missing; " \
           "ckpt1.bin: missing" in stderr
    _, stderr = _boot(tmp_path, {"config": TINY, "resume": "yes"})
    assert "microrl.json: resume must be true or false, got 'yes'" in stderr


SAVE_HEAP = """
import gc, os
os.chdir(%r)
from microrl.config import TD3Config
from microrl.train import Trainer
out = []
for capacity in (64, 4000):
    t = Trainer(TD3Config(**dict(%r, buffer_capacity=capacity)))
    ck = t.checkpoint
    ck.save()
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    ck.save()
    out.append([ck.file_bytes, gc.mem_alloc() - before])
    gc.enable()
    t = ck = None
print(json.dumps(out))
"""


def test_a_save_allocates_no_copy_of_the_state(tmp_path):
    got = run_device(SAVE_HEAP % (str(tmp_path), dict(TINY, checkpoint_every=1,
                                                      checkpoint_replay=True)), timeout_s=120)
    (small, small_alloc), (large, large_alloc) = got
    assert large - small == (4000 - 64) * 36  # float32 replay rows
    # The file object and the CRCs, not a copy of the state: 224 and 320 bytes here.
    assert 0 < small_alloc <= 512 and 0 < large_alloc <= 512


READ_ONLY = """
import builtins, errno
from microrl.config import TD3Config
from microrl.train import Trainer
t = Trainer(TD3Config(**%r))
def read_only(path, mode="r"):
    raise OSError(errno.EROFS, "Read-only file system")
builtins.open = read_only
try:
    t.step()
except Exception as e:
    print(json.dumps([type(e).__name__, str(e)]))
"""


def test_a_read_only_filesystem_says_how_to_enable_writes():
    """What CircuitPython does while the drive is mounted over USB: EROFS on every write."""
    got = run_device(READ_ONLY % dict(TINY, checkpoint_every=1), engine="cpython")
    assert got[0] == "CheckpointError"
    assert got[1].startswith("cannot write ckpt0.bin: the filesystem is read-only. On "
                             "CircuitPython")
    assert 'storage.remount("/", readonly=False) in boot.py' in got[1]


WEIGHTS = """
import os
os.chdir(%r)
from microrl import weights
from microrl.mlp import MLP
from microrl.rng import Rng
net = MLP((3, 8, 1), "tanh", 1, rng=Rng(1))
other = MLP((3, 8, 1), "tanh", 1, rng=Rng(2))
out = {"a": weights.pack(net.params).hex(), "b": weights.pack(other.params).hex()}
weights.save("actor.bin", net.params)
weights.save("actor.bin", other.params)  # replaces the file: the rename goes over it
out["replaced"] = open("actor.bin", "rb").read().hex()
out["tmp_left"] = "actor.bin.tmp" in os.listdir()
os.rename("actor.bin", "actor.bin.tmp")  # what a cut between remove and rename used to leave
weights.load("actor.bin", net.params)
out["from_tmp"] = weights.pack(net.params).hex()
open("actor.bin", "wb").write(bytes(20))  # a rewrite cut short (FAT), the .tmp still whole
weights.load("actor.bin", net.params)
out["from_tmp_too"] = weights.pack(net.params).hex()
os.remove("actor.bin.tmp")
try:
    weights.load("actor.bin", net.params)
except weights.WeightsError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


def test_weights_save_never_leaves_only_the_tmp_and_load_falls_back_to_it(tmp_path):
    got = run_device(WEIGHTS % str(tmp_path))
    assert got["a"] != got["b"]
    assert got["replaced"] == got["b"] and got["tmp_left"] is False
    assert got["from_tmp"] == got["b"] and got["from_tmp_too"] == got["b"]
    assert got["error"] == "not a microrl weights blob (magic b'\\x00\\x00\\x00\\x00', version 0)"


FAT_RENAME = """
import os
os.chdir(%r)
from microrl import weights
from microrl.mlp import MLP
from microrl.rng import Rng
net = MLP((3, 8, 1), "tanh", 1, rng=Rng(1))
weights.save("actor.bin", MLP((3, 8, 1), "tanh", 1, rng=Rng(2)).params)
def fat_rename(src, dst):  # FAT: a rename does not replace an existing file
    if os.path.exists(dst):
        raise OSError(17, "File exists")
os.rename = fat_rename
weights.save("actor.bin", net.params)
print(json.dumps({"file": open("actor.bin", "rb").read().hex(),
                  "want": weights.pack(net.params).hex(), "files": sorted(os.listdir())}))
"""


def test_weights_save_where_a_rename_cannot_replace_a_file(tmp_path):
    got = run_device(FAT_RENAME % str(tmp_path), engine="cpython")
    assert got["file"] == got["want"] and got["files"] == ["actor.bin"]


def test_the_host_reads_the_checkpoint_format_the_board_writes():
    import re

    from microrl_host.board import blobs
    source = (DEVICE_DIR / "microrl" / "checkpoint.py").read_text()
    assert blobs.CHECKPOINT_VERSION == int(re.search(r"FORMAT_VERSION = const\((\d+)\)",
                                                     source).group(1))
