"""The learning benchmark writes its report (a 1000-step run; the full one is 5 seeds x 10 000)."""

import json

from microrl_host.bench.learn import run_bench_learn


def test_short_benchmark_writes_json_and_plot(tmp_path, capsys):
    report = run_bench_learn(str(tmp_path), seeds=(0, 1), steps=1000)
    saved = json.loads((tmp_path / "learn.json").read_text())
    assert saved["config"]["actor_hidden"] == [64, 64] and saved["config"]["batch_size"] == 100
    assert saved["config"]["dtype"] == "float32" and saved["config"]["total_steps"] == 1000
    assert [r["seed"] for r in saved["runs"]] == [0, 1]
    for run in saved["runs"]:
        assert run["steps"] == 1000 and run["wall_s"] > 0
        assert run["eval_curve"] == [[1000, run["eval_return"]]]
        assert -2000 < run["eval_return"] < 0
    assert report["summary"]["runs"] == 2
    assert (tmp_path / "learn_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert saved["repeat_check"]["seed"] == 0 and saved["repeat_check"]["reproduced"] is True
    assert saved["repeat_check"]["wall_s"] > 0
    out, err = capsys.readouterr()
    assert "first_at_-200" in out
    assert "repeat check: seed 0 again, " in out and "the same evaluation curve" in out
    assert "[2/2] seed 1: 100%" in err and "repeat check: seed 0 again: 100%" in err
