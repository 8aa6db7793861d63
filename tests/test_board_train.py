"""`microrl train`, `microrl pull` and `microrl export` of what was pulled, on virtual boards as a
user runs them: Ctrl-C stops the board's training (it still serves); a killed link leaves run.json
and curve.png with what arrived; `--resume` goes on from the newest checkpoint, and without one is
a clear error that changes nothing on the board; pulled files are the board's bytes."""

import json
import os
import re
import signal
import struct
import subprocess
import time

import numpy as np
import pytest

from boardkit import HEAP_BYTES, SMALL, cli, cli_argv, link_to
from devicerun import micropython_path
from microrl_host.board import blobs
from microrl_host.board.vboard import VirtualBoard
from microrl_host.sim import export

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def start_train(port, out_dir, *args):
    return subprocess.Popen(cli_argv("train", "--port", port, "--config", json.dumps(SMALL),
                                     "--out", out_dir, *args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_episodes(proc, run_json, count, timeout_s=120):
    """run.json once it holds ``count`` episodes (the host writes it as they arrive)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        if run_json.exists():
            doc = json.loads(run_json.read_text())
            if len(doc["episodes"]) >= count:
                return doc
        time.sleep(0.05)
    raise AssertionError("no %d episodes in %s within %d s" % (count, run_json, timeout_s))


def flash_files(flash):
    """{path: bytes} of every file on the virtual board's flash."""
    out = {}
    for root, _, names in os.walk(flash):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, flash)] = f.read()
    return out


def last_line(text):
    return text.strip().splitlines()[-1]


def exported_policy_actions(export_dir, obs, cwd):
    """The exported policy.py's actions for the rows of ``obs``, run under micropython with only
    ``export_dir`` on its path (observations and actions travel as float64 bits)."""
    script = ("import struct, policy\nobs = struct.unpack('<%dd', bytes.fromhex('%s'))\n"
              "out = [struct.pack('<d', policy.policy(obs[3 * i:3 * i + 3])) for i in range(%d)]\n"
              "print(b''.join(out).hex())\n" % (obs.size, obs.astype("<f8").tobytes().hex(),
                                                len(obs)))
    env = dict(os.environ, MICROPYPATH=str(export_dir))
    proc = subprocess.run([micropython_path(), "-c", script], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return np.frombuffer(bytes.fromhex(proc.stdout.strip()), "<f8")


def test_ctrl_c_stops_the_board_then_pull_and_export(tmp_path):
    flash, out = tmp_path / "flash", tmp_path / "run"
    board = VirtualBoard(HEAP_BYTES, flash_dir=flash).start()
    try:
        # --resume on a board with nothing on it: exit 2 naming the files, and no deploy.
        proc = cli("train", "--port", board.port, "--resume", "--config", json.dumps(SMALL))
        assert proc.returncode == 2, proc.stderr
        assert last_line(proc.stderr) == (
            "microrl train: --resume: no checkpoint on the board to resume from: ckpt0.bin and "
            "ckpt1.bin are missing (a run checkpoints every checkpoint_every steps)")
        assert flash_files(flash) == {}

        # A long run, deployed first, interrupted once run.json holds two episodes.
        train = start_train(board.port, out, "--steps", 100000, "--checkpoint-every", 0)
        wait_for_episodes(train, out / "run.json", 2)
        train.send_signal(signal.SIGINT)
        _, err = train.communicate(timeout=60)
        assert train.returncode == 130, err
        assert "deploying (the board does not answer the serve protocol)" in err
        stopped = re.fullmatch(r"stopped: the board stopped training at step (\d+) and still "
                               r"serves; \d+ steps at \d+ steps/s on the board, last episode "
                               r"return -[\d.]+; (\d+) episodes in %s" % re.escape(str(out)),
                               last_line(err))
        assert stopped, err
        step, episodes = int(stopped.group(1)), int(stopped.group(2))
        doc = json.loads((out / "run.json").read_text())
        assert doc["status"] == "stopped" and doc["total_steps"] == step < 100000
        assert len(doc["episodes"]) == episodes >= 2
        assert [e["step"] for e in doc["episodes"]] == [200 * (i + 1) for i in range(episodes)]
        assert [e["episode"] for e in doc["episodes"]] == list(range(1, episodes + 1))
        assert all(e["return"] < 0 and e["elapsed_s"] > 0 for e in doc["episodes"])
        assert step >= doc["episodes"][-1]["step"] and doc["steps_per_s"] > 0
        assert doc["config"]["actor_hidden"] == SMALL["actor_hidden"]
        assert doc["config"]["checkpoint_every"] == 0 and doc["weights"]["file"] == "actor.bin"
        assert (out / "curve.png").read_bytes()[:8] == PNG_MAGIC
        with link_to(board) as link:
            hello = link.hello()
        assert hello["learner"]["steps"] == step
        before = flash_files(flash)
        assert "actor.bin" in before and "ckpt0.bin" not in before

        # --resume on the serving board without checkpoints: the same error, nothing changed.
        proc = cli("train", "--port", board.port, "--resume", "--config", json.dumps(SMALL))
        assert proc.returncode == 2 and "ckpt0.bin and ckpt1.bin are missing" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert flash_files(flash) == before
        with link_to(board) as link:
            assert link.hello()["learner"]["steps"] == step

        # pull: the board's bytes; the missing slots are named.
        pulled = tmp_path / "pulled"
        proc = cli("pull", "--port", board.port, "--out", pulled)
        assert proc.returncode == 0, proc.stderr
        assert "missing on the board: ckpt0.bin, ckpt1.bin" in proc.stdout
        assert re.search(r"actor\.bin: %d bytes, CRC32 [0-9a-f]{8} checked; actor 3x8x8x1, "
                         r"float64" % len(before["actor.bin"]), proc.stdout), proc.stdout
        assert sorted(os.listdir(pulled)) == ["actor.bin"]
        assert (pulled / "actor.bin").read_bytes() == before["actor.bin"]
    finally:
        board.stop()

    # export takes the pulled actor.bin and writes the policy.py an actor.json of it gives.
    proc = cli("export", "--weights", pulled / "actor.bin", "--out", tmp_path / "export")
    assert proc.returncode == 0, proc.stderr
    sizes, params = export.load_actor(pulled / "actor.bin")
    export.save_actor(tmp_path / "actor.json", sizes, params)
    assert cli("export", "--weights", tmp_path / "actor.json", "--out",
               tmp_path / "json").returncode == 0
    from_bin = (tmp_path / "export" / "policy.py").read_text().splitlines()
    from_json = (tmp_path / "json" / "policy.py").read_text().splitlines()
    assert from_bin[1:] == from_json[1:] and from_bin[0] != from_json[0]  # the source's name
    obs = export.random_observations(300, seed=4)
    (tmp_path / "cwd").mkdir()
    actions = exported_policy_actions(tmp_path / "export", obs, tmp_path / "cwd")
    qa = export.quantize(sizes, params)
    assert np.array_equal(actions, [qa.policy(o) for o in obs])
    assert np.max(np.abs(actions - export.float_actions(sizes, params, obs)[:, 0])) < 0.05
    assert np.ptp(actions) > 0.01  # a trained actor, not a constant


def test_killed_link_keeps_the_files_then_pull_and_resume(tmp_path):
    flash, out = tmp_path / "flash", tmp_path / "run"
    board = VirtualBoard(HEAP_BYTES, flash_dir=flash).start()
    try:
        train = start_train(board.port, out, "--steps", 100000, "--checkpoint-every", 400)
        wait_for_episodes(train, out / "run.json", 5)
        board.stop()  # the interpreter is killed and the port goes away
        _, err = train.communicate(timeout=60)
    finally:
        board.stop()
    assert train.returncode == 1, err
    assert "Traceback" not in err
    lost = re.fullmatch(r"microrl train: link lost after step (\d+): .*; the (\d+) episodes "
                        r"received are in %s" % re.escape(str(out)), last_line(err))
    assert lost, err
    doc = json.loads((out / "run.json").read_text())
    assert doc["status"] == "link lost" and doc["message"]
    assert len(doc["episodes"]) == int(lost.group(2)) >= 5
    assert doc["episodes"][-1]["step"] == int(lost.group(1))
    assert (out / "curve.png").read_bytes()[:8] == PNG_MAGIC

    board = VirtualBoard(HEAP_BYTES, flash_dir=flash).start()  # powers on into the serve loop
    try:
        pulled = tmp_path / "pulled"
        proc = cli("pull", "--port", board.port, "--out", pulled, "--json")
        assert proc.returncode == 1  # no actor.bin: the run never ended
        assert last_line(proc.stderr) == ("microrl pull: the board has no actor.bin: `microrl "
                                          "train` saves it when a run ends")
        summary = json.loads(proc.stdout)
        assert summary["missing"] == ["actor.bin"]
        on_flash = flash_files(flash)
        slots = {}
        for name in ("ckpt0.bin", "ckpt1.bin"):
            data = (pulled / name).read_bytes()
            assert data == on_flash[name] and summary["files"][name]["bytes"] == len(data)
            try:
                slots[name] = blobs.check_checkpoint(data)
            except blobs.FormatError:  # the kill can cut a save; the board skips that slot
                pass
        newest = max(slots.items(), key=lambda item: item[1]["seq"])
        assert newest[1]["steps"] % 400 == 0 and newest[1]["steps"] >= 400

        # --resume goes on from the newest valid checkpoint, without a deploy.
        start = newest[1]["steps"]
        proc = cli("train", "--port", board.port, "--resume", "--steps", start + 400,
                   "--config", json.dumps(SMALL), "--out", tmp_path / "resumed")
        assert proc.returncode == 0, proc.stderr
        assert "no deploy" in proc.stderr
        assert "resumed from %s (checkpoint %d) at step %d" % (newest[0], newest[1]["seq"], start) \
            in proc.stderr
        doc = json.loads((tmp_path / "resumed" / "run.json").read_text())
        assert doc["status"] == "complete" and doc["start_step"] == start
        assert doc["total_steps"] == start + 400 and doc["resumed"]["file"] == newest[0]
        assert [e["step"] for e in doc["episodes"]] == [s for s in range(start + 1, start + 401)
                                                         if s % 200 == 0]
    finally:
        board.stop()


def test_pulled_float32_blob_exports_as_its_float_actor(tmp_path):
    """A float32 board's actor.bin gives the policy.py of an actor.json holding the same values;
    a cut or foreign blob is a one-line error."""
    from devicerun import run_device

    out = run_device("from microrl import weights\nfrom microrl.backend import K\n"
                     "from microrl.mlp import MLP\nfrom microrl.rng import Rng\nimport struct\n"
                     "net = MLP((3, 6, 5, 1), 'tanh', 2, Rng(3))\n"
                     "other = MLP((4, 6, 5, 1), 'tanh', 2, Rng(3))\n"
                     "vals = [struct.pack('<d', K.get(p, i, j)) for p in net.params\n"
                     "        for i in range(K.shape(p)[0]) for j in range(K.shape(p)[1])]\n"
                     "print(json.dumps({'blob': bytes(weights.pack(net.params)).hex(),\n"
                     "                  'other': bytes(weights.pack(other.params)).hex(),\n"
                     "                  'values': b''.join(vals).hex()}))\n", float_bits=32)
    blob = bytes.fromhex(out["blob"])
    assert chr(blob[5]) == "f"
    values = np.frombuffer(bytes.fromhex(out["values"]), "<f8")
    sizes = (3, 6, 5, 1)
    params, at = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        for shape in ((n_in, n_out), (n_out,)):
            count = int(np.prod(shape))
            params.append(values[at:at + count].reshape(shape))
            at += count
    assert at == len(values)
    (tmp_path / "actor.bin").write_bytes(blob)
    export.save_actor(tmp_path / "actor.json", sizes, params)
    texts = []
    for name in ("actor.bin", "actor.json"):
        summary = export.export(tmp_path / name, tmp_path / name.replace(".", "_"),
                                source_name="the board")
        assert summary["sizes"] == list(sizes)
        texts.append((tmp_path / name.replace(".", "_") / "policy.py").read_text())
    assert texts[0] == texts[1]

    for data, message in ((blob[:-3], "weights blob of %d bytes, layer sizes 3x6x5x1 need %d"
                           % (len(blob) - 3, len(blob))),
                          (bytes.fromhex(out["other"]), "not a pendulum actor"),
                          (b"MRLW\x02" + blob[5:], "weights blob format version 2")):
        (tmp_path / "bad.bin").write_bytes(data)
        proc = cli("export", "--weights", tmp_path / "bad.bin", "--out", tmp_path / "bad")
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and not (tmp_path / "bad").exists()


@pytest.mark.parametrize("command, args, message", [
    ("train", ("--port", "/dev/nonexistent"), "microrl train: cannot open /dev/nonexistent: "),
    ("train", ("--port", "/dev/null", "--board", "rp2-pcio"), "microrl train: unknown board "
                                                              "'rp2-pcio'; "),
    ("train", ("--port", "/dev/null", "--config", "{steps: 1}"), "microrl train: --config is not "
                                                                 "JSON"),
    ("train", ("--port", "/dev/null", "--config", "[1]"), "microrl train: --config must be a JSON "
                                                          "object of TD3Config fields, got [1]"),
    ("train", ("--port", "/dev/null", "--steps", "0"), "microrl train: --steps must be a positive "
                                                       "number of steps, got 0"),
    ("train", ("--port", "/dev/null", "--checkpoint-every", "-5"), "microrl train: "
                                                                   "--checkpoint-every must be >= "
                                                                   "0, got -5"),
    ("pull", ("--port", "/dev/nonexistent"), "microrl pull: cannot open /dev/nonexistent: "),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, command, args, message):
    proc = cli(command, *args, "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
    assert os.listdir(tmp_path) == []
