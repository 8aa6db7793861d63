"""`microrl sim` on the servo: --env servo on both engines, the profile option, bad names."""

import json
import subprocess
import sys

import numpy as np

from microrl_host.board.boards import BOARDS_DIR, load_profile

SMALL = ["--set", "actor_hidden=[8,8]", "--set", "critic_hidden=[8,8]", "--set", "batch_size=8",
         "--set", "learning_starts=300", "--set", "eval_every=400", "--set", "eval_episodes=2"]
PNG = b"\x89PNG\r\n\x1a\n"


def sim(*args):
    return subprocess.run([sys.executable, "-m", "microrl_host.cli", "sim", *args],
                          capture_output=True, text=True, timeout=900)


def test_env_servo_on_both_engines_agrees_and_draws_the_move(tmp_path):
    runs = {}
    for engine in ("numpy", "micropython"):
        proc = sim("--env", "servo", "--engine", engine, "--steps", "800", "--seed", "2", *SMALL,
                   "--out", str(tmp_path / engine), "--json")
        assert proc.returncode == 0, proc.stderr
        runs[engine] = run = json.loads(proc.stdout)
        assert run["config"]["env"] == "servo" and run["solved_return"] == -3.0
        assert len(run["episode_returns"]) == 8  # 100-step episodes: the servo's own length
        assert all(-105.0 <= r <= 0.0 for r in run["episode_returns"])
        move = run["servo"]
        assert len(move["angles_rad"]) == 101 and len(move["duties"]) == 100
        assert move["target_rad"] == 2.0 and move["angles_rad"][0] == 0.0
        assert "swingup" not in run and set(run["files"]) == {"run", "curve", "servo", "actor"}
        for name in ("curve.png", "servo.png"):
            data = (tmp_path / engine / name).read_bytes()
            assert data[:8] == PNG and len(data) > 10000
        actor = json.loads((tmp_path / engine / "actor.json").read_text())
        assert actor["sizes"] == [5, 8, 8, 1]
    # float64 on both sides (the unix profile): the same run to rounding.
    np.testing.assert_allclose(runs["micropython"]["episode_returns"],
                               runs["numpy"]["episode_returns"], atol=1e-9, rtol=0)
    np.testing.assert_allclose([r for _, r in runs["micropython"]["eval_returns"]],
                               [r for _, r in runs["numpy"]["eval_returns"]], atol=1e-9, rtol=0)
    np.testing.assert_allclose(runs["micropython"]["servo"]["angles_rad"],
                               runs["numpy"]["servo"]["angles_rad"], atol=1e-9, rtol=0)


def test_a_profile_selects_the_servo_and_fits_the_pico_heap(tmp_path):
    # env = "servo" in a profile's learner table: the rp2-pico's learner on the servo, in its heap.
    profile = tmp_path / "pico-servo.toml"
    profile.write_text((BOARDS_DIR / "rp2-pico.toml").read_text().replace('"rp2-pico"',
                                                                           '"pico-servo"')
                       + 'env = "servo"\n')
    proc = sim("--board", str(profile), "--engine", "micropython", "--steps", "100",
               "--set", "learning_starts=90", "--set", "eval_every=0", "--set", "eval_episodes=1",
               "--out", str(tmp_path / "run"), "--json")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert run["board"] == "pico-servo" and run["config"]["env"] == "servo"
    assert run["config"]["replay"] == "compressed" and len(run["episode_returns"]) == 1
    heap = load_profile("rp2-pico").heap_bytes
    assert 0 < run["heap_peak_bytes"] < heap
    # The footprint model counts the servo's 5 observations (14-byte compressed rows).
    assert abs(run["heap_estimate_bytes"] - run["heap_peak_bytes"]) < 0.1 * run["heap_peak_bytes"]


def test_an_unknown_environment_is_one_line_exit_2(tmp_path):
    proc = sim("--set", "env=cartpole", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("microrl sim: error: bad config: unknown environment "
                                   "'cartpole' (built in: pendulum, servo)")
    proc = sim("--env", "cartpole", "--out", str(tmp_path))
    assert proc.returncode == 2 and "invalid choice: 'cartpole'" in proc.stderr
    assert not (tmp_path / "run.json").exists()
