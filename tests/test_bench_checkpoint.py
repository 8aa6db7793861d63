"""`microrl bench-checkpoint` without QEMU: its summary and table from results recorded on the QEMU
firmware (tests/data/checkpoint_runs.json: rp2-pico on m0, pyboard-v11 on m7, unix on the desktop),
the errors about the firmware directory, and the benchmark script itself (its RAM filesystem, the
slot sizes) on the desktop micropython."""

import json
from pathlib import Path

import pytest

from microrl_host import cli
from microrl_host.bench import checkpoint
from microrl_host.board.boards import load_profile
from test_checkpoint import _floats

DATA = Path(__file__).parent / "data"


@pytest.fixture
def recorded():
    doc = json.loads((DATA / "checkpoint_runs.json").read_text())
    for run in doc["runs"]:
        run["summary"] = checkpoint.summarize(run)
    return doc


def _run(doc, board):
    return next(r for r in doc["runs"] if r["board"] == board)


def test_summary_in_instructions(recorded):
    pico = _run(recorded, "rp2-pico")["summary"]  # microbit: 1562.5 instructions per tick
    assert pico["state"]["file_bytes"] == 10920 and pico["replay"]["file_bytes"] == 30920
    assert pico["state"]["save_instructions"] == 417188  # median of 268, 267, 267 ticks
    assert pico["state"]["save_spread_instructions"] == 1562  # one tick
    assert pico["replay"]["load_instructions"] == 3098438  # 1983 ticks
    pyboard = _run(recorded, "pyboard-v11")["summary"]  # mps2-an500: 1000 per tick
    assert pyboard["state"]["load_instructions"] == 899000  # median of 895, 899, 899
    assert pyboard["replay"]["scan_instructions"] == 1276000
    assert pyboard["replay"]["file_bytes"] == 20920
    unix = _run(recorded, "unix")["summary"]  # the desktop: microseconds, no instructions
    assert unix["state"]["save_us"] == 1685 and "save_instructions" not in unix["state"]
    assert pico["error"] is None and pico["state"]["same_state"] is True


def test_table_and_report_files(recorded, tmp_path):
    lines = checkpoint.table(recorded).splitlines()
    assert lines[2] == ("| pyboard-v11 | m7, m7-ulab-94208.elf | 10 920 | 293 k | 779 k | 899 k "
                        "| 20 920 | 510 k | 1.28 M | 1.41 M |")
    assert lines[3] == ("| rp2-pico | m0, m0-ulab-196608.elf | 10 920 | 417 k | 1.15 M | 1.34 M "
                        "| 30 920 | 828 k | 2.84 M | 3.1 M |")
    assert lines[4] == ("| unix | desktop micropython (no QEMU core) | 434 392 | - | - | - "
                        "| 794 392 | - | - | - |")
    assert lines[6] == ("- unix, on the desktop micropython: save 1.7 ms, with replay 3.3 ms "
                        "(the desktop's time)")
    checkpoint.write(tmp_path, recorded)
    md = (tmp_path / "checkpoint.md").read_text()
    assert "median of 3" in md and "10 steps past learning_starts" in md and lines[3] in md
    back = json.loads((tmp_path / "checkpoint.json").read_text())
    assert [r["board"] for r in back["runs"]] == ["pyboard-v11", "rp2-pico", "unix"]


def test_failures_are_named_in_the_table(recorded):
    run = _run(recorded, "pyboard-v11")
    run["result"]["replay"] = {"file_bytes": 20920, "error": "MemoryError: memory allocation "
                               "failed, allocating 20921 bytes"}
    run["summary"] = checkpoint.summarize(run)
    row = checkpoint.table(recorded).splitlines()[2]
    assert row.endswith("| 20 920 | MemoryError | MemoryError | MemoryError |")
    run["result"] = {"error": "MemoryError in the learner: memory allocation failed"}
    run["summary"] = checkpoint.summarize(run)
    text = checkpoint.table(recorded)
    assert "- pyboard-v11: MemoryError in the learner: memory allocation failed" in text


def bench(capsys, *args):
    status = cli.main(["bench-checkpoint"] + [str(a) for a in args])
    return status, capsys.readouterr().err.strip().splitlines()


def test_firmware_dir_absent(capsys, tmp_path):
    status, err = bench(capsys, "--firmware-dir", tmp_path / "fw", "--out", tmp_path / "out")
    assert status == 2 and len(err) == 1
    assert err[0].startswith("bench-checkpoint: firmware directory %s does not exist"
                             % (tmp_path / "fw"))
    assert not (tmp_path / "out").exists()


def test_firmware_dir_lacking_one_file(capsys, tmp_path):
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "m0-pure-196608.elf").write_bytes(b"\x7fELF")
    status, err = bench(capsys, "--firmware-dir", fw, "--boards", "rp2-pico")
    assert status == 2 and len(err) == 1
    assert err[0].startswith("bench-checkpoint: %s lacks m0-ulab-196608.elf (rp2-pico, ulab); "
                             "build them with HEAPS=\"m0=196608\" firmware/build_qemu.sh" % fw)


def test_firmware_that_is_not_an_elf(capsys, tmp_path):
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "m7-pure-94208.elf").write_text("not firmware")
    status, err = bench(capsys, "--firmware-dir", fw, "--boards", "pyboard-v11",
                        "--backend", "pure")
    assert status == 2 and len(err) == 1 and "is not an ELF file" in err[0]


def test_unknown_board(capsys, tmp_path):
    status, err = bench(capsys, "--firmware-dir", tmp_path, "--boards", "teensy41")
    assert status == 2 and len(err) == 1 and "unknown board 'teensy41'" in err[0]


@pytest.mark.parametrize("board", ["esp32", "rp2-pico2"])
def test_slot_bytes_on_the_desktop_match_the_format(board):
    """The benchmark script itself, RAM filesystem and all, on the desktop micropython."""
    profile = load_profile(board)
    run = checkpoint.bench_desktop(profile, past=4, repeat=2, timeout_s=120,
                                   heap_bytes=8 << 20)
    assert run["summary"]["error"] is None, run["summary"]["error"]
    learner = profile.learner
    params = (_floats([3] + list(learner["actor_hidden"]) + [1])
              + 2 * _floats([4] + list(learner["critic_hidden"]) + [1]))
    state = 24 + 80 + 16 + 4 * params * profile.float_bits // 8  # test_checkpoint's formula
    s = run["summary"]
    assert s["state"]["file_bytes"] == state
    assert s["replay"]["file_bytes"] == state + learner["buffer_capacity"] * 10  # compressed
    result = run["result"]
    assert result["train_steps"] == 504 and result["critic_updates"] == 4
    for mode in checkpoint.MODES:
        assert s[mode]["same_state"] is True  # a load put back the state the save wrote
        assert result[mode]["seq"] == 4  # 1 + 2 saves + 1 after the loads, both names one file
        assert len(result[mode]["save_us"]) == 2
