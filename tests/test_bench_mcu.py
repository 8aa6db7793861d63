"""`microrl bench-mcu` without QEMU: its report (mcu.json, mcu.md) from device replies recorded on
the QEMU firmware (tests/data/mcu_replies.json: rp2-pico on m0 with ulab, pyboard-v11 on m7 pure
Python, a learner too big for its heap, and one whose updates fail on a fragmented heap), the
replies' collection over a link that replays them, and the errors about the firmware directory."""

import copy
import json
from pathlib import Path

import pytest

from microrl_host import cli
from microrl_host.bench import mcu
from microrl_host.board.boards import load_profile, profile_names
from microrl_host.board.transport import BoardError

DATA = Path(__file__).parent / "data"


@pytest.fixture
def recorded():
    return json.loads((DATA / "mcu_replies.json").read_text())


def test_every_board_but_unix_has_a_core_and_a_firmware():
    entries = mcu.plan()
    boards = sorted({p.name for p, _, _, _ in entries})
    assert boards == sorted(n for n in profile_names() if n != "unix")
    names = {(p.name, backend): name for p, _, backend, name in entries}
    assert names[("rp2-pico", "ulab")] == "m0-ulab-196608.elf"
    assert names[("pyboard-v11", "pure")] == "m7-pure-94208.elf"
    assert names[("esp32s3-psram", "ulab")] == "m7-ulab-4194304.elf"
    assert names[("rp2-pico", "viper")] == "m0-pure-196608.elf"  # stock firmware, no ulab
    # vfp: the ulab firmware, for the Thumb-2 cores with an FPU only (not the RP2040's M0+, not
    # the ESP32s' Xtensa cores, though the M7 stands in for them)
    assert names[("rp2-pico2", "vfp")] == "m7-ulab-460800.elf"
    assert names[("pyboard-v11", "vfp")] == "m7-ulab-94208.elf"
    assert {board for board, backend in names if backend == "vfp"} == {"rp2-pico2", "pyboard-v11"}
    # pyasm: the pure firmware, for the Cortex-M chips only (not the ESP32s)
    assert names[("rp2-pico", "pyasm")] == "m0-pure-196608.elf"
    assert {board for board, backend in names if backend == "pyasm"} == {
        "rp2-pico", "rp2-pico2", "pyboard-v11"}
    assert len(entries) == 3 * len(boards) + 2 + 3
    assert [backend for p, _, backend, _ in entries if p.name == "rp2-pico2"] == [
        "pure", "pyasm", "ulab", "vfp", "viper"]
    assert [backend for p, _, backend, _ in entries if p.name == "esp32"] == [
        "pure", "ulab", "viper"]
    assert mcu.vfp_skipped() == ["esp32", "esp32s3-psram", "rp2-pico"]
    assert mcu.vfp_skipped(["rp2-pico2"], ("ulab", "vfp")) == []
    assert mcu.vfp_skipped(["rp2-pico"], ("ulab",)) == []  # vfp not asked for
    only = mcu.plan(["esp32", "rp2-pico2"], ("vfp",))
    assert [(p.name, backend) for p, _, backend, _ in only] == [("rp2-pico2", "vfp")]


def test_config_jobs_run_vfp_on_the_m7_only():
    points = [{"name": "a", "core": "m0", "heap_bytes": 196608, "learner": {}},
              {"name": "b", "core": "m7", "heap_bytes": 94208, "learner": {"batch_size": 8}}]
    jobs = mcu.config_jobs(points, ("ulab", "vfp"))
    assert [(j.name, j.core, j.backend, j.firmware) for j in jobs] == [
        ("a", "m0", "ulab", "m0-ulab-196608.elf"), ("b", "m7", "ulab", "m7-ulab-94208.elf"),
        ("b", "m7", "vfp", "m7-ulab-94208.elf")]
    assert jobs[2].learner == {"batch_size": 8}
    with pytest.raises(mcu.BenchSetupError, match="unknown backend 'numpy'; known: pure, pyasm, "
                                                  "ulab, vfp, viper"):
        mcu.config_jobs(points, ("numpy",))


def test_summary_in_instructions(recorded):
    pico, pyboard, too_big, fragmented = recorded["runs"]
    s = mcu.summarize(pico)
    b = s["benchmarks"]
    assert pico["instructions_per_tick"] == 1562.5
    assert b["critic_update"]["instructions"] == 54250000  # 34720 ticks x 1562.5
    assert b["full_update"]["instructions"] == 82581250  # 52852 ticks
    assert s["update_mean_instructions"] == (54250000 + 82581250) // 2
    trainer = pico["replies"]["trainer_step"]
    assert trainer["repeat"] == 6  # --repeat 3 x policy_delay 2
    assert b["trainer_step"]["instructions"] == round(trainer["mean_us"] * 1562.5)
    assert b["env_step"]["alloc_bytes"] == 496
    assert b["critic_update"]["alloc_bytes"] is None
    assert b["critic_update"]["alloc_free_bytes"] == 63664
    assert s["heap_free_after_construction_bytes"] == pico["replies"]["reset"]["heap_free_bytes"]
    assert s["heap_total_bytes"] == 192064  # of the 196608-byte heap, as on a Pico

    s = mcu.summarize(pyboard)
    assert s["benchmarks"]["critic_update"]["instructions"] == \
        pyboard["replies"]["critic_update"]["median_us"] * 1000

    s = mcu.summarize(too_big)
    assert s["construction_error"].startswith("MemoryError: memory allocation failed")
    assert s["benchmarks"] == {} and s["update_mean_instructions"] is None

    s = mcu.summarize(fragmented)
    assert s["construction_error"] is None
    assert s["benchmarks"]["critic_update"] == {
        "error": "MemoryError: memory allocation failed, allocating 2304 bytes",
        "type": "MemoryError"}
    assert s["benchmarks"]["env_step"]["instructions"] > 0
    assert s["update_mean_instructions"] is None


def test_report_files(recorded, tmp_path):
    for run in recorded["runs"]:
        run["summary"] = mcu.summarize(run)
    mcu.write(tmp_path, recorded)
    assert json.loads((tmp_path / "mcu.json").read_text()) == recorded
    md = (tmp_path / "mcu.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| board | core | backend | heap | free after construction |")
    assert rows[1] == ("| rp2-pico | m0 | ulab | 192.0 KB | 62.6 KB | 54.2 M | 82.6 M | 68.4 M "
                       "| 69.3 M | 46.9 k | 225 k | > 62.2 KB, > 61.9 KB |")
    assert rows[2].startswith("| pyboard-v11 | m7 | pure | 92.0 KB | 52.2 KB | 55.3 M | 84.8 M |")
    assert rows[3] == ("| esp32s3-psram-in-92k | m7 | ulab | 92.0 KB | MemoryError in "
                       "construction | - | - | - | - | - | - | - |")
    assert rows[4].startswith("| rp2-pico-buffer-2600 | m0 | ulab | 192.0 KB | 23.7 KB | "
                              "MemoryError | MemoryError | - | MemoryError |")
    assert "- esp32s3-psram-in-92k, ulab: MemoryError: memory allocation failed, allocating " \
           "4032 bytes" in md
    assert "median of 3 runs" in md and "Device code recorded." in md
    assert ("- backends: pure: the pure-Python float kernels' plain loops (firmware without ulab "
            "or an inline assembler, `\"asm\": false`); pyasm: the pure-Python backend with its "
            "products, Adam and target updates in machine code (kernels_pyasm: stock firmware on "
            "a Cortex-M); ulab: ulab's own products (`\"vfp\": false`); vfp: ulab with the MLP "
            "products in Thumb-2 VFP assembler (kernels_vfp; profiles with thumb_fpu, on the M7); "
            "viper:") in md


def test_report_rows_of_vfp(recorded, tmp_path):
    """A vfp run is a row of its own beside ulab's, which the cost model's check reads back."""
    pyboard = recorded["runs"][1]
    vfp = copy.deepcopy(pyboard)
    vfp["backend"] = "vfp"
    vfp["replies"]["critic_update"]["median_us"] = 1262
    doc = dict(recorded, runs=[pyboard, vfp])
    for run in doc["runs"]:
        run["summary"] = mcu.summarize(run)
    md = mcu.markdown(doc)
    rows = [line for line in md.splitlines() if line.startswith("| pyboard-v11 |")]
    assert [row.split(" | ")[2] for row in rows] == ["pure", "vfp"]
    assert rows[1].split(" | ")[5] == "1.26 M"
    from microrl_host.sim import calibrate
    assert [(r["backend"], r["critic_update"]) for r in calibrate.table_runs(md)] == [
        ("pure", 55.3e6), ("vfp", 1.26e6)]  # 55 338 ticks of 1000 instructions, to 3 digits


def test_count_formatting():
    assert [mcu.count(n) for n in (None, 950, 46875, 225000, 54250000, 2.8e9)] == \
        ["-", "950", "46.9 k", "225 k", "54.2 M", "2.8 G"]


class ReplayLink:
    """A board link that answers with recorded replies (error replies raise BoardError)."""

    def __init__(self, replies):
        self.replies = replies
        self.asked = []

    def _answer(self, key):
        reply = copy.deepcopy(self.replies[key])
        if not reply.get("ok", True):
            raise BoardError("%s failed on the board: %s" % (key, reply["error"]), reply)
        return dict(reply, v=1, id=len(self.asked))

    def connect(self):
        self.asked.append(("hello",))
        return self._answer("hello")

    def reset(self, config=None):
        self.asked.append(("reset", config))
        return self._answer("reset")

    def bench(self, name, repeat=10):
        self.asked.append((name, repeat))
        return self._answer(name)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_collect_asks_and_keeps_what_the_board_says(recorded, index):
    run = recorded["runs"][index]
    link = ReplayLink(run["replies"])
    replies = mcu.collect(link, run["learner"], 3, run["backend"])
    assert replies == run["replies"]
    if "config" in run["replies"]["reset"]:
        assert link.asked[2:] == [("actor_forward", 3), ("env_step", 3), ("critic_update", 3),
                                  ("full_update", 3), ("trainer_step", 6)]
    else:  # construction failed: nothing to benchmark
        assert link.asked == [("hello",), ("reset", run["learner"])]


def test_collect_refuses_the_wrong_backend(recorded):
    run = recorded["runs"][0]
    with pytest.raises(ValueError, match="reports backend ulab, expected python"):
        mcu.collect(ReplayLink(run["replies"]), run["learner"], 3, "pure")
    with pytest.raises(ValueError, match="reports backend ulab, expected viper"):
        mcu.collect(ReplayLink(run["replies"]), run["learner"], 3, "viper")


@pytest.mark.parametrize("backend, products, message", [
    ("vfp", "ulab", "the firmware reports products ulab, expected vfp"),
    ("vfp", None, "the firmware reports products None, expected vfp"),  # firmware before vfp
    ("ulab", "vfp", "the firmware reports products vfp, expected ulab's own"),
])
def test_collect_refuses_the_wrong_products(recorded, backend, products, message):
    replies = recorded["runs"][0]["replies"]  # a ulab board
    if products is not None:
        replies["hello"]["products"] = products
    link = ReplayLink(replies)
    with pytest.raises(ValueError, match=message):
        mcu.collect(link, {}, 3, backend)
    assert link.asked == [("hello",)]  # nothing built or measured


@pytest.mark.parametrize("backend, products", [("vfp", "vfp"), ("ulab", "ulab"),
                                               ("ulab", None)])
def test_collect_accepts_the_products_of_its_backend(recorded, backend, products):
    run = recorded["runs"][0]
    if products is not None:
        run["replies"]["hello"]["products"] = products
    replies = mcu.collect(ReplayLink(run["replies"]), run["learner"], 3, backend)
    assert replies["hello"].get("products") == products
    assert replies["full_update"] == run["replies"]["full_update"]


class FakeQemuBoard:
    """Records the settings a bench-mcu run serves with; no QEMU."""

    served = []

    def __init__(self, machine, firmware, binary=None):
        self.port = "fake-port"
        self.instructions_per_tick = 1000.0

    def start(self):
        pass

    def serve(self, settings):
        FakeQemuBoard.served.append(settings)

    def stop(self):
        pass


@pytest.mark.parametrize("backend, products, settings, wrong", [
    ("vfp", "vfp", {"vfp": True}, "ulab"), ("ulab", "ulab", {"vfp": False}, "vfp"),
    ("pyasm", "thumb", {"asm": True}, "python"), ("pure", "python", {"asm": False}, "thumb"),
    ("viper", "viper", {}, None),
])
def test_bench_one_sends_the_backend_settings(recorded, monkeypatch, backend, products,
                                              settings, wrong):
    """vfp runs with "vfp": true and ulab with "vfp": false (ulab's own products, also on the
    M7), pyasm with "asm": true and pure with "asm": false (the plain loops); a reply with other
    products is the run's error."""
    replies = recorded["runs"][0]["replies"]
    replies["hello"].update(backend=mcu.DEVICE_BACKEND[backend], products=products)

    class Link(ReplayLink):
        def __init__(self, transport, timeout_s):
            super().__init__(replies)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    FakeQemuBoard.served = []
    monkeypatch.setattr(mcu, "QemuBoard", FakeQemuBoard)
    monkeypatch.setattr(mcu, "SerialTransport", lambda port: port)
    monkeypatch.setattr(mcu, "BoardLink", Link)
    run = mcu.bench_one("rp2-pico2", {"batch_size": 16}, 460800, "m7", backend,
                        "m7-ulab-460800.elf", 3)
    assert FakeQemuBoard.served == [dict(settings, board="rp2-pico2",
                                         config={"batch_size": 16},
                                         backend=mcu.DEVICE_BACKEND[backend])]
    assert run["error"] is None and run["backend"] == backend
    assert run["summary"]["update_mean_instructions"] > 0
    replies["hello"]["products"] = wrong
    if wrong is not None:
        run = mcu.bench_one("rp2-pico2", {}, 460800, "m7", backend, "m7-ulab-460800.elf", 3)
        assert run["error"].startswith("ValueError: the firmware reports products ")


def bench_mcu(capsys, *args):
    status = cli.main(["bench-mcu"] + [str(a) for a in args])
    return status, capsys.readouterr().err.strip().splitlines()


def test_firmware_dir_absent(capsys, tmp_path):
    status, err = bench_mcu(capsys, "--firmware-dir", tmp_path / "fw", "--out", tmp_path / "out")
    assert status == 2 and len(err) == 1
    assert err[0].startswith("bench-mcu: firmware directory %s does not exist: build the firmware "
                             "with firmware/build_qemu.sh MICROPYTHON_DIR %s ULAB_DIR"
                             % (tmp_path / "fw", tmp_path / "fw"))
    assert not (tmp_path / "out").exists()


def test_firmware_dir_lacking_one_file(capsys, tmp_path):
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "m0-pure-196608.elf").write_bytes(b"\x7fELF")
    status, err = bench_mcu(capsys, "--firmware-dir", fw, "--boards", "rp2-pico")
    assert status == 2 and len(err) == 1
    assert err[0] == ("bench-mcu: %s lacks m0-ulab-196608.elf (rp2-pico, ulab); build them with "
                      "HEAPS=\"m0=196608\" firmware/build_qemu.sh MICROPYTHON_DIR %s ULAB_DIR "
                      "(your micropython and micropython-ulab checkouts)" % (fw, fw))


def test_vfp_for_a_profile_without_thumb_fpu(capsys, tmp_path):
    """--backends vfp leaves out the profiles without a Thumb-2 FPU with a note, and is an error
    when nothing is left."""
    status, err = bench_mcu(capsys, "--firmware-dir", tmp_path, "--boards", "rp2-pico",
                            "--backends", "vfp")
    assert status == 2 and err[-1] == (
        "bench-mcu: nothing to measure: vfp runs on the m7 core only, for profiles with "
        "thumb_fpu = true (pyboard-v11, rp2-pico2)")
    assert err[0] == ("bench-mcu: vfp needs a Thumb-2 core with an FPU (thumb_fpu in the "
                      "profile): skipped for rp2-pico")
    status, err = bench_mcu(capsys, "--firmware-dir", tmp_path, "--boards", "esp32",
                            "rp2-pico2", "--backends", "ulab", "vfp")
    assert status == 2 and err == [
        "bench-mcu: vfp needs a Thumb-2 core with an FPU (thumb_fpu in the profile): skipped "
        "for esp32",
        "bench-mcu: %s lacks m7-ulab-112640.elf (esp32, ulab), m7-ulab-460800.elf (rp2-pico2, "
        "ulab); build them with HEAPS=\"m7=112640,460800\" firmware/build_qemu.sh "
        "MICROPYTHON_DIR %s ULAB_DIR (your micropython and micropython-ulab checkouts)"
        % (tmp_path, tmp_path)]
    configs = tmp_path / "configs.json"
    configs.write_text(json.dumps([{"name": "p", "core": "m0", "heap_bytes": 1024,
                                    "learner": {}}]))
    status, err = bench_mcu(capsys, "--firmware-dir", tmp_path, "--configs", configs,
                            "--backends", "vfp")
    assert status == 2 and err == [
        "bench-mcu: vfp runs on the m7 core only: skipped for p",
        "bench-mcu: nothing to measure: vfp runs on the m7 core only, for profiles with "
        "thumb_fpu = true (pyboard-v11, rp2-pico2)"]


def test_firmware_that_is_not_an_elf(capsys, tmp_path):
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "m0-pure-196608.elf").write_text("not firmware")
    status, err = bench_mcu(capsys, "--firmware-dir", fw, "--boards", "rp2-pico",
                            "--backends", "pure")
    assert status == 2 and len(err) == 1 and "is not an ELF file" in err[0]


@pytest.mark.parametrize("board, message", [
    ("unix", "board unix has no QEMU core: give it qemu_core"),
    ("teensy41", "unknown board 'teensy41'"),
])
def test_boards_without_a_core(capsys, tmp_path, board, message):
    status, err = bench_mcu(capsys, "--firmware-dir", tmp_path, "--boards", board)
    assert status == 2 and len(err) == 1 and message in err[0]


def test_jobs_run_under_a_progress_bar(monkeypatch, capsys):
    """Each job takes minutes on QEMU: a bar counts them, with the rate and time left."""
    def fake_bench_one(name, *args):
        log = args[-1]  # measure_all passes the job's log last
        log("built")
        return {"name": name, "error": None}
    monkeypatch.setattr(mcu, "bench_one", fake_bench_one)
    jobs = [mcu.Job(name, {}, 65536, "m0", "pure", "m0-pure-65536.elf") for name in "abc"]
    args = type("Args", (), {"jobs": 2, "firmware_dir": ".", "repeat": 1, "qemu_binary": None,
                             "timeout_s": 1.0})()
    seen = []
    results = mcu.measure_all(jobs, args, lambda i, result: seen.append(i))
    assert [r["name"] for r in results] == ["a", "b", "c"] and sorted(seen) == [0, 1, 2]
    out, err = capsys.readouterr()
    assert out == ""
    assert "[3/3] c on m0, pure (m0-pure-65536.elf)" in err and "  c, pure: built" in err
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("bench-mcu: 100%") and "3/3" in final and "job/s" in final
