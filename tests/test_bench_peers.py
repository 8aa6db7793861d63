"""bench-peers without RLtools: a stand-in peer, the settings handed to tinyrl, the report files."""

import json

import pytest

from microrl_host.bench import peers
from microrl_host.bench.learn import bench_config


class StandInPeer:
    """Answers like the tinyrl worker, with fixed numbers; records the order of the runs."""

    info = {"tinyrl": "0.4.3", "backend": "OpenBLAS", "blas_libraries": ["libblas.so.3"],
            "core": "Haswell", "flags": ["-O3"], "build_s": 0.5, "flushes_subnormals": True}

    def __init__(self, log):
        self.log = log
        self.closed = False

    def run(self, seed):
        self.log.append(("rltools", seed))
        return {"wall_s": 0.25, "cpu_s": 0.2, "eval_return": -150.0 - seed,
                "eval_curve": [[0, -1500.0]], "first_step_at_minus_200": 1000}

    def close(self):
        self.closed = True


def test_settings_handed_to_tinyrl_are_the_mirror_config():
    config = bench_config(0, 10000)
    settings = peers.peer_settings(config)
    assert settings["ACTOR_POLYAK"] == pytest.approx(1.0 - config.tau)
    assert settings["N_WARMUP_STEPS"] == config.learning_starts == 500
    assert settings["ACTOR_HIDDEN_DIM"] == 64 and settings["ACTOR_NUM_LAYERS"] == 3
    assert settings["CRITIC_BATCH_SIZE"] == 100 and settings["ACTOR_TRAINING_INTERVAL"] == 2
    assert settings["OPTIMIZER_EPSILON"] == config.adam_eps
    assert settings["STEP_LIMIT"] == 10000 and settings["REPLAY_BUFFER_CAP"] == 10000


def test_both_learners_run_every_seed_alternating_and_the_report_is_written(tmp_path):
    log = []
    peer = StandInPeer(log)
    messages = []

    def progress(text):
        messages.append(text)
        if text.startswith("seed") and " mirror " in text:
            log.append(("mirror", int(text.split()[1])))

    doc = peers.run_bench_peers(str(tmp_path), seeds=(0, 1), steps=1000, peer=peer,
                                progress=progress)
    assert log == [("mirror", 0), ("rltools", 0), ("rltools", 1), ("mirror", 1)]
    assert peer.closed
    saved = json.loads((tmp_path / "peers.json").read_text())
    assert [r["seed"] for r in saved["mirror"]["runs"]] == [0, 1]
    assert saved["mirror"]["flushes_subnormals"] is False  # the mirror's process keeps IEEE
    mirror = saved["mirror"]["summary"]
    assert mirror["runs"] == 2 and mirror["wall_s_min"] <= mirror["wall_s_median"]
    rltools = saved["rltools"]["summary"]
    assert rltools["wall_s_median"] == pytest.approx(2.5)  # 0.25 s per 1000 steps, per 10 000
    assert rltools["eval_return_median"] == pytest.approx(-150.5)
    text = (tmp_path / "peers.md").read_text()
    assert "| RLtools | OpenBLAS libblas.so.3 (Haswell), -O3 | 2.50 |" in text
    assert text.count("\n| 0 |") == 1 and "RLtools yes" in text
    assert doc["steps"] == 1000
