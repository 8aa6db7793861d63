"""End to end on a virtual board: deploy with mpremote, hello, a bench suite and a 300-step train,
as sources and as .mpy files; the CLI's bench --virtual and a board in train mode."""

import json
import os

import pytest

from boardkit import SMALL, cli, deployed_board, link_to
from microrl_host.bench.runner import BENCHMARKS, run_suite
from microrl_host.board.boards import BOARDS_DIR


@pytest.mark.parametrize("compiled", [False, True], ids=["py", "mpy"])
def test_deploy_hello_bench_train(tmp_path, compiled):
    flash = tmp_path / "flash"
    with deployed_board(flash, compiled=compiled) as board, link_to(board) as link:
        files = sorted(os.listdir(flash / "lib" / "microrl"))
        suffix = ".mpy" if compiled else ".py"
        # viper code compiles for an architecture: bytecode packages keep it as source
        assert files and all(f.endswith(suffix) or f in ("intadam.py", "kernels_viper.py")
                             for f in files), files
        assert {"main.py", "microrl.json"} <= set(os.listdir(flash))

        hello = link.hello()
        assert hello["implementation"] == "micropython"
        assert hello["mpy"]["version"] == 6 and hello["float_bits"] in (32, 64)
        # The desktop interpreter compiles viper: without ulab it picks the viper backend.
        assert hello["backend"] == ("viper" if hello["ulab"] is None else "ulab")
        assert "viper" in hello["backend_reason"] or hello["ulab"] is not None
        assert hello["heap_free_bytes"] > 0 and hello["protocol"] == 1

        doc = run_suite(link, BENCHMARKS, 5, tmp_path / "out", hello, label="vboard")
        assert [r["name"] for r in doc["results"]] == list(BENCHMARKS)
        saved = json.loads((tmp_path / "out" / "results.json").read_text())
        assert saved["status"] == "complete" and saved["results"] == doc["results"]
        for r in saved["results"]:
            assert 0 <= r["min_us"] <= r["median_us"] <= r["max_us"] and r["repeat"] == 5
            if r["alloc_bytes"] is None:  # a pure-Python update allocates more than the free heap
                assert r["alloc_error"].startswith("not measurable: with collection disabled")
            else:
                assert r["alloc_bytes"] >= 0
        for name in ("results.csv", "results.md", "results.png"):
            assert (tmp_path / "out" / name).stat().st_size > 0

        episodes = []
        reply = link.train(300, seed=3, on_episode=episodes.append)
        assert reply["steps"] == 300 and reply["total_steps"] == 300 and not reply["stopped"]
        assert [e["step"] for e in episodes] == [200] and reply["episodes"] == 1
        assert reply["last_return"] == episodes[0]["return"] < 0
        assert reply["episode_events"] == episodes
        config = link.hello()["learner"]["config"]
        assert config["actor_hidden"] == SMALL["actor_hidden"] and config["seed"] == 3


def test_bench_cli_on_virtual_board(tmp_path):
    """--virtual takes a profile file too; the results carry its name."""
    out = tmp_path / "bench"
    profile = tmp_path / "mine.toml"
    profile.write_text((BOARDS_DIR / "unix.toml").read_text().replace('name = "unix"',
                                                                     'name = "mine"'))
    proc = cli("bench", "--virtual", profile, "--config", json.dumps(SMALL), "--suite", "inference",
               "--repeat", 3, "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["label"] == "mine" and doc["board"]["board"] == "mine"
    assert [r["name"] for r in doc["results"]] == ["actor_forward", "env_step"]
    assert doc["board"]["implementation"] == "micropython"
    assert "[2/2] env_step" in proc.stderr
    assert json.loads((out / "results.json").read_text()) == doc
    assert (out / "results.csv").read_text().splitlines()[0] == \
        "name,median_us,min_us,max_us,alloc_bytes,repeat"


def test_train_mode_saves_weights_to_flash(tmp_path):
    from microrl_host.board import deploy
    from boardkit import PROFILE

    flash = tmp_path / "flash"
    with deployed_board(flash) as board:
        lines = []
        deploy.deploy(board.port, PROFILE, mode="train", steps=400, seed=2, config=SMALL,
                      log=lines.append)
        events = [json.loads(line) for line in lines if line.startswith("{")]
        assert [e["event"] for e in events] == ["episode", "episode", "done"]
        assert [e["step"] for e in events[:2]] == [200, 400]
        assert events[-1]["weights"] == "actor.bin" and events[-1]["steps"] == 400
        assert events[-1]["final_eval_return"] < 0
        blob = (flash / "actor.bin").read_bytes()
        itemsize = 8 if blob[5:6] == b"d" else 4
        assert blob[:4] == b"MRLW" and len(blob) == 16 + 113 * itemsize  # sizes 3-8-8-1
        settings = json.loads((flash / "microrl.json").read_text())
        assert settings["mode"] == "train" and settings["steps"] == 400
