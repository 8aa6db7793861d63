"""Desktop simulator mode: `microrl sim` on both engines, every board profile, and bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from microrl_host.board.boards import BOARDS_DIR, load_profile, profile_names

SMALL = ["--set", "actor_hidden=[8,8]", "--set", "critic_hidden=[8,8]", "--set", "batch_size=8",
         "--set", "learning_starts=300", "--set", "eval_every=500", "--set", "eval_episodes=2"]


def sim(*args):
    return subprocess.run([sys.executable, "-m", "microrl_host.cli", "sim", *args],
                          capture_output=True, text=True, timeout=900)


def test_sim_numpy_writes_run_json_and_pictures(tmp_path):
    proc = sim("--board", "unix", "--steps", "2000", "--seed", "1", "--out", str(tmp_path),
               "--json")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    on_disk = json.loads((tmp_path / "run.json").read_text())
    assert on_disk["episode_returns"] == run["episode_returns"]
    for key in ("board", "engine", "config", "episode_returns", "eval_returns",
                "final_eval_return", "steps_per_s", "heap_peak_bytes", "wall_s"):
        assert key in run, key
    assert run["board"] == "unix" and run["engine"] == "numpy"
    assert run["config"]["total_steps"] == 2000 and run["config"]["seed"] == 1
    assert len(run["episode_returns"]) == 10
    assert [s for s, _ in run["eval_returns"]] == [1000, 2000]
    assert run["final_eval_return"] == run["eval_returns"][-1][1] < 0
    assert run["steps_per_s"] > 0 and run["wall_s"] > 0
    assert len(run["swingup"]["angles_rad"]) == 201
    for name in ("curve.png", "swingup.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000
    assert "sim unix, numpy: 100%" in proc.stderr and "2000/2000" in proc.stderr  # the bar


def test_engines_agree(tmp_path):
    runs = {}
    for engine in ("numpy", "micropython"):
        proc = sim("--engine", engine, "--steps", "1000", "--seed", "4", *SMALL,
                   "--out", str(tmp_path / engine), "--json")
        assert proc.returncode == 0, proc.stderr
        runs[engine] = json.loads(proc.stdout)
    assert len(runs["numpy"]["episode_returns"]) == 5
    np.testing.assert_allclose(runs["micropython"]["episode_returns"],
                               runs["numpy"]["episode_returns"], atol=1e-3, rtol=0)
    np.testing.assert_allclose([r for _, r in runs["micropython"]["eval_returns"]],
                               [r for _, r in runs["numpy"]["eval_returns"]], atol=1e-3, rtol=0)
    assert runs["micropython"]["heap_peak_bytes"] > 10000
    assert runs["numpy"]["heap_peak_bytes"] is None


@pytest.mark.parametrize("board", profile_names())
def test_every_profile_fits_its_heap_on_micropython(board, tmp_path):
    """The board's own config: construct it and run 100 training steps, the last 10 with TD3
    updates, in the unix interpreter limited to the board's heap (plus, for a profile whose
    firmware has microrl frozen in, the heap its code takes on this port)."""
    profile = load_profile(board)
    proc = sim("--board", board, "--engine", "micropython", "--steps", "100", "--out",
               str(tmp_path), "--set", "learning_starts=90", "--set", "eval_every=0",
               "--set", "eval_episodes=1", "--json")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    for key, value in profile.learner.items():
        if key != "total_steps":
            assert run["config"][key] == value, key
    assert run["heap_code_bytes"] == 0 or profile.frozen
    assert 0 < run["heap_peak_bytes"] - run["heap_code_bytes"] < profile.heap_bytes
    # The footprint model used for the fit check stays within 10 % of the measurement.
    assert abs(run["heap_estimate_bytes"] - run["heap_peak_bytes"]) < 0.1 * run["heap_peak_bytes"]


def test_heap_measured_does_not_depend_on_the_length_of_the_out_path(tmp_path):
    """Imported modules keep their file's path in the heap: the run's files sit in a short
    temporary directory, so a deep --out (a test's temporary directory) takes no heap from a
    tight board."""
    peaks = []
    for out in (tmp_path / "a", tmp_path / ("deep_" * 10) / ("deeper_" * 6)):
        proc = sim("--board", "esp32", "--engine", "micropython", "--steps", "100", "--out",
                   str(out), "--set", "learning_starts=90", "--set", "eval_every=0",
                   "--set", "eval_episodes=1", "--json")
        assert proc.returncode == 0, proc.stderr
        peaks.append(json.loads(proc.stdout)["heap_peak_bytes"])
    assert peaks[0] == peaks[1] > 10000


def test_pico_profile_with_all_three_options_fits_its_heap(tmp_path):
    """Compressed replay, prioritized replay and the int8 actor together on the rp2-pico config:
    the optional code and the sum tree must fit beside the learner in 192 KB."""
    proc = sim("--board", "rp2-pico", "--engine", "micropython", "--steps", "100", "--out",
               str(tmp_path), "--set", "learning_starts=90", "--set", "eval_every=0",
               "--set", "eval_episodes=1", "--set", "replay=compressed",
               "--set", "prioritized=true", "--set", "act_int8=true", "--json")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert (run["config"]["replay"], run["config"]["prioritized"]) == ("compressed", True)
    assert 0 < run["heap_peak_bytes"] < load_profile("rp2-pico").heap_bytes
    assert abs(run["heap_estimate_bytes"] - run["heap_peak_bytes"]) < 0.15 * run["heap_peak_bytes"]


def test_unknown_board():
    proc = sim("--board", "teensy-9000")
    assert proc.returncode == 2
    assert "unknown board 'teensy-9000'" in proc.stderr and "rp2-pico" in proc.stderr


def test_missing_interpreter(tmp_path):
    missing = tmp_path / "no-such-micropython"
    proc = sim("--engine", "micropython", "--micropython", str(missing), "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "micropython interpreter %s is not an executable file" % missing in proc.stderr


def test_interpreter_that_fails_says_how(tmp_path):
    """/bin/false exits 1 without a word: the error says so instead of an empty reason."""
    proc = sim("--engine", "micropython", "--micropython", "/bin/false", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("microrl sim: error: /bin/false does not run as MicroPython "
                                   "with a heap of 8388608 bytes (exit 1, no output)")
    assert "Traceback" not in proc.stderr and not (tmp_path / "run.json").exists()


def test_board_given_as_a_profile_file(tmp_path):
    profile = tmp_path / "tiny.toml"
    profile.write_text((BOARDS_DIR / "unix.toml").read_text().replace('"unix"', '"tiny"'))
    proc = sim("--board", str(profile), "--steps", "400", *SMALL, "--out", str(tmp_path / "run"),
               "--json")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert run["board"] == "tiny" and run["config"]["batch_size"] == 8
    profile.write_text(profile.read_text().replace("float_bits", "float_bit"))
    proc = sim("--board", str(profile), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    assert ("board profile %s: unknown field 'float_bit' (did you mean 'float_bits'?)" % profile
            in proc.stderr)


def test_interpreter_without_ulab_warns_and_falls_back(tmp_path):
    proc = sim("--board", "rp2-pico", "--engine", "micropython", "--steps", "200",
               "--set", "eval_every=0", "--set", "eval_episodes=1", "--out", str(tmp_path),
               "--json")
    assert proc.returncode == 0, proc.stderr
    assert "has no ulab: using the pure-Python fallback" in proc.stderr
    assert "slower" in proc.stderr
    run = json.loads(proc.stdout)
    assert run["engine_info"]["backend"] == "python" and run["engine_info"]["store_bits"] == 32


def test_config_that_cannot_fit_fails_before_training(tmp_path):
    proc = sim("--board", "pyboard-v11", "--engine", "micropython", "--set",
               "buffer_capacity=8000", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "does not fit board pyboard-v11" in proc.stderr
    assert "94208 bytes" in proc.stderr and "needs about" in proc.stderr
    assert not (tmp_path / "run.json").exists()


def test_bad_set_value(tmp_path):
    proc = sim("--set", "batch_size=0", "--out", str(tmp_path))
    assert proc.returncode == 2 and "batch_size" in proc.stderr
    proc = sim("--set", "gamma=[1]", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "microrl sim: error: bad config: gamma must be a number, got [1]"
