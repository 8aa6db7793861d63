"""The QEMU board without QEMU: its command lines, the ticks-to-instructions factor, and every bad
input of `microrl vboard --qemu` as a one-line error with exit status 2 (a fake QEMU answers
``-machine help`` from a recorded machine list)."""

import json
from pathlib import Path

import pytest

from microrl_host import cli
from microrl_host.bench.report import ResultsWriter, readable, to_markdown
from microrl_host.board import qemu

DATA = Path(__file__).parent / "data"
COMMON = ["-nographic", "-monitor", "null", "-semihosting", "-icount", "shift=0", "-serial", "pty"]


@pytest.mark.parametrize("machine, extra", [
    ("microbit", ["-global", "nrf51-soc.flash-size=1048576",
                  "-global", "nrf51-soc.sram-size=262144"]),
    ("mps2-an385", []),
    ("mps2-an500", []),
])
def test_command_line_per_machine(machine, extra):
    assert qemu.command("qemu-system-arm", machine, "/fw/x.elf") == (
        ["qemu-system-arm", "-machine", machine] + extra + COMMON + ["-kernel", "/fw/x.elf"])


def test_cores_name_the_firmware_machines():
    assert qemu.CORES == {"m0": "microbit", "m3": "mps2-an385", "m7": "mps2-an500"}
    assert set(qemu.CORES.values()) == set(qemu.MACHINES)


def test_ticks_to_instructions():
    assert qemu.instructions_per_tick("microbit") == 1562.5
    assert qemu.instructions_per_tick("mps2-an385") == qemu.instructions_per_tick("mps2-an500") \
        == 1000.0
    assert qemu.instructions_per_tick("mps2-an386") is None  # not calibrated
    assert qemu.ticks_to_instructions(34720, 1562.5) == 54250000
    assert qemu.ticks_to_instructions(44352.5, 1000.0) == 44352500
    assert qemu.ticks_to_instructions(3, 1562.5) == 4688  # 4687.5, half to even
    assert qemu.ticks_to_instructions(None, 1000.0) is None


def test_machine_of_a_hello_reply():
    replies = json.loads((DATA / "mcu_replies.json").read_text())["runs"]
    machines = {r["machine"]: qemu.machine_of(r["replies"]["hello"]) for r in replies}
    assert machines == {"microbit": "microbit", "mps2-an500": "mps2-an500"}
    assert qemu.machine_of({"platform": "linux", "machine": "x86_64"}) is None


def test_results_of_a_qemu_board_are_in_instructions(tmp_path):
    run = json.loads((DATA / "mcu_replies.json").read_text())["runs"][0]
    hello = run["replies"]["hello"]
    writer = ResultsWriter(tmp_path, hello, label="qemu", instructions_per_tick=qemu
                           .instructions_per_tick(qemu.machine_of(hello)))
    row = writer.add(run["replies"]["critic_update"])
    assert row["median_us"] == 34720 and row["median_instructions"] == 54250000
    assert row["alloc_error"].startswith("not measurable")
    writer.finish()
    md = (tmp_path / "results.md").read_text()
    assert "| median instructions | min instructions | max instructions |" in md
    assert "| critic_update | 54,250,000 | 54,234,375 | 54,514,062 |" in md
    assert "1562.5 instructions per ticks_us tick" in md
    assert (tmp_path / "results.csv").read_text().splitlines()[0].endswith(
        "median_instructions,min_instructions,max_instructions")
    empty = to_markdown({"results": [], "status": "complete"})
    assert "| benchmark | median | min | max |" in empty


@pytest.mark.parametrize("value, unit, text", [
    (1009909.5, "us", "1.01 s"), (1.00991e6, "us", "1.01 s"), (850000, "us", "850 ms"),
    (12.3, "us", "12.3 us"), (0.42, "us", "0.420 us"), (999.4, "us", "999 us"),
    (123456789, "us", "123 s"), (0, "us", "0 us"), (None, "us", "-"),
    (54250000, "instructions", "54,250,000"),
])
def test_readable_measurements(value, unit, text):
    assert readable(value, unit) == text


def test_parse_machines():
    names = qemu.parse_machines((DATA / "qemu_machines.txt").read_text())
    assert names[:3] == ["microbit", "mps2-an385", "mps2-an386"] and "Supported" not in names


@pytest.fixture
def fake_qemu(tmp_path):
    """A qemu-system-arm that only answers -machine help, from the recorded list."""
    path = tmp_path / "fake-qemu"
    path.write_text("#!/bin/sh\ncat '%s'\n" % (DATA / "qemu_machines.txt"))
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def elf(tmp_path):
    path = tmp_path / "m7-ulab-94208.elf"
    path.write_bytes(b"\x7fELF\x01\x01\x01" + bytes(100))
    return str(path)


def vboard(capsys, *args):
    """`microrl vboard ARGS` in this process: (exit status, stderr lines)."""
    status = cli.main(["vboard"] + [str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    return status, err


def test_missing_firmware(capsys, fake_qemu, tmp_path):
    status, err = vboard(capsys, "--qemu", "mps2-an500", "--firmware", tmp_path / "no.elf",
                         "--qemu-binary", fake_qemu)
    assert status == 2 and len(err) == 1
    assert err[0] == "vboard: firmware %s does not exist" % (tmp_path / "no.elf")


def test_firmware_that_is_not_an_elf(capsys, fake_qemu, tmp_path):
    text = tmp_path / "firmware.bin"
    text.write_text("MicroPython, but a hex file\n")
    status, err = vboard(capsys, "--qemu", "mps2-an500", "--firmware", text,
                         "--qemu-binary", fake_qemu)
    assert status == 2 and len(err) == 1
    assert "firmware %s is not an ELF file" % text in err[0] and "b'Micr'" in err[0]


def test_qemu_not_installed(capsys, elf, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("QEMU", raising=False)
    status, err = vboard(capsys, "--qemu", "mps2-an500", "--firmware", elf)
    assert status == 2 and len(err) == 1
    assert err[0].startswith("vboard: qemu-system-arm is not installed (not on PATH)")
    assert "--qemu-binary" in err[0]


def test_qemu_binary_given_but_missing(capsys, elf, tmp_path, monkeypatch):
    monkeypatch.setenv("QEMU", str(tmp_path / "nowhere" / "qemu"))
    status, err = vboard(capsys, "--qemu", "mps2-an500", "--firmware", elf)
    assert status == 2 and err == ["vboard: QEMU binary %s not found or not executable"
                                   % (tmp_path / "nowhere" / "qemu")]


def test_machine_qemu_does_not_know(capsys, elf, fake_qemu):
    status, err = vboard(capsys, "--qemu", "mps2-an999", "--firmware", elf,
                         "--qemu-binary", fake_qemu)
    assert status == 2 and len(err) == 1
    assert "does not know the machine 'mps2-an999'" in err[0]
    assert "microbit, mps2-an385, mps2-an500" in err[0]


def test_qemu_options_go_together(capsys, elf):
    status, err = vboard(capsys, "--firmware", elf)
    assert status == 2 and err == ["vboard: --qemu MACHINE and --firmware ELF go together"]
    status, err = vboard(capsys, "--qemu", "microbit", "--firmware", elf, "--heap-bytes", 4096)
    assert status == 2 and "--heap-bytes does not apply to a QEMU board" in err[0]


def test_known_machines_are_asked_once(fake_qemu, monkeypatch):
    calls = []
    real_run = qemu.subprocess.run

    def counting_run(cmd, **kwargs):
        calls.append(cmd)
        return real_run(cmd, **kwargs)
    monkeypatch.setattr(qemu.subprocess, "run", counting_run)
    qemu.known_machines.cache_clear()
    qemu.check_machine("microbit", fake_qemu)
    qemu.check_machine("mps2-an500", fake_qemu)
    assert calls == [[fake_qemu, "-machine", "help"]]


def test_start_code_runs_the_serve_loop_with_the_settings():
    code = qemu.start_code({"board": "esp32", "config": {"actor_hidden": [16, 16], "tau": 0.005},
                            "backend": "viper"})
    assert code == ("from microrl.app import start\n"
                    "start({'board': 'esp32', 'config': {'actor_hidden': [16, 16], "
                    "'tau': 0.005}, 'backend': 'viper'})\n")
