"""The commands as a user runs them: `microrl vboard` prints a port; mpremote, `microrl deploy` and
`microrl bench --port` use it as they would a USB board; a reset mid-run leaves the results so far."""

import json
import re
import signal
import subprocess
import sys

import pytest

from boardkit import SMALL, cli, cli_argv


@pytest.fixture
def vboard_cli(tmp_path):
    """`microrl vboard --flash DIR --json` running in the background; yields (info, process)."""
    proc = subprocess.Popen(cli_argv("vboard", "--flash", tmp_path / "flash", "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        yield info, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def mpremote(port, *args):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "resume"] + list(args),
                          capture_output=True, text=True, timeout=60)


def test_mpremote_deploy_and_bench_against_vboard(vboard_cli, tmp_path):
    info, proc = vboard_cli
    port = info["port"]
    assert port.startswith("/dev/") and info["heap_bytes"] == 8388608  # boards/unix.toml

    out = mpremote(port, "exec", "import sys; print(sys.implementation.name, 6 * 7)")
    assert out.returncode == 0 and out.stdout.split() == ["micropython", "42"], out.stderr

    deployed = cli("deploy", "--port", port, "--board", "unix", "--mpy", "--config",
                   json.dumps(SMALL), "--json")
    assert deployed.returncode == 0, deployed.stderr
    hello = json.loads(deployed.stdout)
    assert hello["implementation"] == "micropython" and hello["protocol"] == 1
    assert "mpy-cross -march=x64" in deployed.stderr
    listing = sorted((tmp_path / "flash" / "lib" / "microrl").iterdir())
    assert listing and all(p.suffix == ".mpy" for p in listing)

    # Without --out the results are named after the profile the board was deployed with.
    bench = cli("bench", "--port", port, "--suite", "learn", "--repeat", 3, cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr
    out_dir = tmp_path / "bench" / "results" / "unix"
    doc = json.loads((out_dir / "results.json").read_text())
    assert doc["status"] == "complete" and doc["label"] == "unix"
    assert [r["name"] for r in doc["results"]] == ["td3_update", "replay_sample"]
    assert doc["board"]["learner"]["config"]["batch_size"] == SMALL["batch_size"]
    assert (out_dir / "results.md").read_text().startswith("# Benchmarks: unix\n")
    # Durations in the unit that suits, three significant digits.
    assert re.search(r"\[1/2\] td3_update +median \d+(\.\d+)? (us|ms|s) \(min \d", bench.stderr)
    assert "e+0" not in bench.stderr and "wrote %s/results" % out_dir.relative_to(tmp_path) \
        in bench.stderr

    # mpremote takes the serving board back (Ctrl-C), like a USB board.
    listed = mpremote(port, "fs", "ls", ":")
    assert listed.returncode == 0 and "microrl.json" in listed.stdout, listed.stderr
    assert proc.poll() is None


def test_bench_reports_reset_and_keeps_results(tmp_path):
    """A board that resets mid-run: exit status 2, a clear message, earlier results kept."""
    code = """
import json, sys, threading
sys.path.insert(0, %r)
from boardkit import deployed_board
from microrl_host.bench import runner as bench_runner
with deployed_board() as board:
    original = bench_runner.run_suite
    def run_suite(*args, on_result=None, **kwargs):
        def reset_after_td3_update(result):
            on_result(result)  # the progress bar's
            if result["name"] == "td3_update":
                board.reset()
        return original(*args, on_result=reset_after_td3_update, **kwargs)
    bench_runner.run_suite = run_suite
    parser = __import__("argparse").ArgumentParser()
    bench_runner.add_arguments(parser)
    sys.exit(bench_runner.run(parser.parse_args(["--port", board.port, "--repeat", "3",
                                                 "--out", %r])))
""" % (str(__import__("pathlib").Path(__file__).parent), str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "bench stopped: the board restarted" in proc.stderr
    assert "results received before are in" in proc.stderr
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["status"] == "reset"
    assert [r["name"] for r in doc["results"]] == ["actor_forward", "td3_update"]


@pytest.mark.parametrize("args, message", [
    (("--heap-bytes", "-1"), "vboard: --heap-bytes must be a positive number of bytes, got -1"),
    (("--heap-bytes", "100"), "does not run as MicroPython with a heap of 100 bytes (exit 1, "
                              "output: Invalid command line arguments"),
    (("--micropython", "/tmp"), "vboard: micropython interpreter /tmp is not an executable file"),
    (("--micropython", "/bin/false"), "vboard: /bin/false does not run as MicroPython with a heap "
                                      "of 8388608 bytes (exit 1, no output)"),
    (("--board", "rp2-pcio"), "vboard: unknown board 'rp2-pcio'; known boards: esp32, "),
])
def test_vboard_refuses_what_cannot_boot(tmp_path, args, message):
    """Each of these booted a board that powered on again forever, or printed a traceback."""
    proc = subprocess.run(cli_argv("vboard", "--flash", tmp_path / "flash", *args),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_vboard_takes_a_profile_file(tmp_path):
    profile = tmp_path / "mine.toml"
    profile.write_text('description = "mine"\nheap_bytes = 300000\nfloat_bits = 32\n'
                       'ulab = false\nclock_hz = 0\n')
    proc = subprocess.Popen(cli_argv("vboard", "--board", profile, "--json"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert (info["board"], info["heap_bytes"]) == ("mine", 300000)
        out = mpremote(info["port"], "exec", "import gc; gc.collect(); "
                                             "print(gc.mem_free() + gc.mem_alloc())")
        assert out.returncode == 0, out.stderr
        assert 290000 < int(out.stdout.split()[-1]) <= 300000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_bench_on_a_port_that_does_not_exist(tmp_path):
    """Exit 1 (not the reset status 2), and no claim that results were saved."""
    proc = cli("bench", "--port", "/dev/nonexistent", "--out", tmp_path / "out")
    assert proc.returncode == 1
    assert proc.stderr.startswith("bench failed before any benchmark ran (nothing written): "
                                  "cannot open /dev/nonexistent: ")
    assert "results received" not in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (("--port", "/dev/null", "--board", "rp2-pcio"), "bench: unknown board 'rp2-pcio'; "),
    (("--virtual", "rp2-pcio"), "bench: unknown board 'rp2-pcio'; "),
    (("--virtual", "unix", "--board", "unix"), "bench: --board goes with --port"),
])
def test_bench_rejects_a_mistyped_board(tmp_path, args, message):
    proc = cli("bench", *args, "--out", tmp_path / "out")
    assert proc.returncode == 1 and proc.stderr.startswith(message), proc.stderr
    assert not (tmp_path / "out").exists()


def test_check_micropython_names_the_implementation():
    from microrl_host.board.vboard import check_micropython, default_micropython

    assert check_micropython(default_micropython(), 65536) == "micropython"
