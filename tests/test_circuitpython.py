"""The device code as a CircuitPython 10 board runs it, on the unix `micropython`: the modules in
tests/data/circuitpy_board shadow the port's own (a `time` with only a board's functions, a
`supervisor` whose ticks_ms wraps 3 s after import, no `select`), so the clock and the stdin
paths are the ones a board takes. Where $CIRCUITPYTHON names a CircuitPython unix build, the same
scripts run on it too."""

import base64
import json
import os
import subprocess
import sys

import pytest

from devicerun import DEVICE_DIR, micropython_path, run_device

BOARD_DIR = DEVICE_DIR.parent / "tests" / "data" / "circuitpy_board"
NO_BINASCII_DIR = DEVICE_DIR.parent / "tests" / "data" / "no_binascii"
BOARD_TIME = ["localtime", "mktime", "monotonic", "monotonic_ns", "sleep", "struct_time", "time"]
SMALL = {"actor_hidden": [8, 8], "critic_hidden": [8, 8], "batch_size": 8,
         "buffer_capacity": 500, "learning_starts": 50, "eval_episodes": 1, "episode_steps": 50,
         "eval_every": 0}
CIRCUITPYTHON = os.environ.get("CIRCUITPYTHON")  # a CircuitPython unix build, if there is one
CIRCUITPYTHON_MPY_CROSS = os.environ.get("CIRCUITPYTHON_MPY_CROSS")  # and its mpy-cross
needs_circuitpython = pytest.mark.skipif(not (CIRCUITPYTHON and CIRCUITPYTHON_MPY_CROSS),
                                         reason="set CIRCUITPYTHON and CIRCUITPYTHON_MPY_CROSS "
                                                "to a CircuitPython unix build and its mpy-cross")
INTERPRETERS = ["micropython"] + (["circuitpython"] if CIRCUITPYTHON else [])


def interpreter(name):
    return micropython_path() if name == "micropython" else CIRCUITPYTHON


def on_board(body, name="micropython", stdin="", cwd=None, extra_path=()):
    """Run ``body`` with the board's modules first on the path; the JSON lines it printed."""
    paths = [str(p) for p in extra_path] + [str(BOARD_DIR), str(DEVICE_DIR)]
    script = "import sys\nsys.path[:0] = %r\nimport json\n" % paths + body
    proc = subprocess.run([interpreter(name), "-X", "heapsize=4M", "-c", script], input=stdin,
                          capture_output=True, text=True, timeout=120, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


CLOCK_SCRIPT = """
import time, supervisor
from microrl import clock
names = sorted(n for n in dir(time) if not n.startswith("_"))
t_ms, t_us, t0_ns = clock.ticks_ms(), clock.ticks_us(), time.monotonic_ns()
time.sleep(0.2)
short_us, short_ns = clock.ticks_diff(clock.ticks_us(), t_us), time.monotonic_ns() - t0_ns
while supervisor.ticks_ms() >= t_ms and time.monotonic_ns() - t0_ns < 30 * 10 ** 9:
    time.sleep(0.05)  # until the millisecond ticks wrap
end_ms, elapsed_s, wall_ns = clock.ticks_ms(), clock.elapsed_s(t_ms), time.monotonic_ns() - t0_ns
print(json.dumps({"names": names, "has_ticks": hasattr(time, "ticks_ms"),
                  "supervisor_clock": clock.ticks_ms is supervisor.ticks_ms,
                  "start_ms": t_ms, "end_ms": end_ms, "elapsed_s": elapsed_s,
                  "wall_s": wall_ns / 1e9, "short_us": short_us, "short_wall_us": short_ns // 1000,
                  "diffs": [clock.ticks_diff(5, (1 << 29) - 5), clock.ticks_diff(3, 10),
                            clock.ticks_diff((1 << 29) - 1, 0)]}))
"""


@pytest.mark.parametrize("name", INTERPRETERS)
def test_clock_uses_supervisor_and_monotonic_ns_where_time_has_no_ticks(name):
    out, = on_board(CLOCK_SCRIPT, name)
    assert out["names"] == BOARD_TIME and not out["has_ticks"]
    assert out["supervisor_clock"]
    assert out["start_ms"] >= (1 << 29) - 3000 and out["end_ms"] < out["start_ms"]  # it wrapped
    assert abs(out["elapsed_s"] - out["wall_s"]) < 0.05  # measured across the wrap
    assert out["short_us"] >= 200000 and abs(out["short_us"] - out["short_wall_us"]) < 20000
    assert out["diffs"] == [10, -7, -1]


SERVE_SCRIPT = """
from microrl.lineio import LineReader
from microrl.serve import MAX_LINE_BYTES, Server
reader = LineReader(MAX_LINE_BYTES, sys.stdin)  # a board's stdin: text, no buffer
print(json.dumps({"can_poll": reader.can_poll(), "poller": reader._poller is not None}))
Server({"config": %r}, reader=reader).serve()
"""


def _requests(*requests):
    return "".join(json.dumps(dict({"v": 1, "id": i + 1}, **r)) + "\n"
                   for i, r in enumerate(requests))


@pytest.mark.parametrize("name", INTERPRETERS)
def test_serve_loop_answers_and_stops_training_through_supervisor_polling(name):
    stdin = _requests({"cmd": "hello"}, {"cmd": "bench", "name": "actor_forward", "repeat": 7},
                      {"cmd": "bench", "name": "env_step", "repeat": 5},
                      {"cmd": "train", "steps": 100000}, {"cmd": "stop"},
                      {"cmd": "bench", "name": "no_such_benchmark"})
    first, ready, *messages = on_board(SERVE_SCRIPT % (SMALL,), name, stdin)
    assert first == {"can_poll": True, "poller": False}  # polled via supervisor, not select
    assert ready["event"] == "ready"
    replies = {m["id"]: m for m in messages if "ok" in m}
    hello = replies[1]
    assert hello["implementation"] == ("circuitpython" if name == "circuitpython" else
                                       "micropython")
    for request_id, repeat in ((2, 7), (3, 5)):
        bench = replies[request_id]
        assert bench["ok"] and bench["repeat"] == repeat
        assert 0 < bench["min_us"] <= bench["median_us"] <= bench["max_us"] < 1000000
    train = replies[4]
    assert train["ok"] and train["stopped"] and 1 <= train["steps"] < 100000
    assert 0 <= train["elapsed_s"] < 30
    assert replies[5] == {"v": 1, "id": 5, "ok": True, "stopping": True}
    error = replies[6]
    assert not error["ok"] and error["type"] == "BenchError"
    assert "unknown benchmark 'no_such_benchmark'" in error["error"]
    assert error["traceback"].startswith("Traceback (most recent call last)")


TRAIN_MODE_SCRIPT = """
from microrl.app import train_mode
summary = train_mode({"mode": "train", "config": %r, "steps": 120, "seed": 3,
                      "weights": "actor.bin"})
"""


@pytest.mark.parametrize("name", INTERPRETERS)
def test_train_mode_on_board_clock_trains_and_saves(name, tmp_path):
    lines = on_board(TRAIN_MODE_SCRIPT % (SMALL,), name, cwd=tmp_path)
    episodes = [m for m in lines if m["event"] == "episode"]
    done = lines[-1]
    assert [m["step"] for m in episodes] == [50, 100]
    assert all(-1000 < m["return"] < 0 for m in episodes)
    assert done["event"] == "done" and done["steps"] == 120 and done["weights"] == "actor.bin"
    assert (tmp_path / "actor.bin").stat().st_size == done["bytes"]
    assert not (tmp_path / "actor.bin.tmp").exists() and not (tmp_path / "actor.bin.probe").exists()


READ_ONLY_SCRIPT = """
from microrl import app, weights
def read_only(path, mode="r"):
    if "w" in mode:
        raise OSError(30, "Read-only filesystem")
    return open(path, mode)
weights.open = read_only  # the flash of a board whose CIRCUITPY drive is mounted
try:
    app.train_mode({"mode": "train", "config": %r, "steps": 100000})
    print(json.dumps({"error": None}))
except weights.WeightsError as e:
    print(json.dumps({"error": str(e)}))
"""


@pytest.mark.parametrize("name", INTERPRETERS)
def test_read_only_flash_stops_train_mode_before_training_with_the_boot_py_recipe(name):
    lines = on_board(READ_ONLY_SCRIPT % (SMALL,), name)
    assert len(lines) == 1  # no episode ran: the check comes first
    message = lines[0]["error"]
    assert message.startswith("actor.bin: flash is read-only to code (on CircuitPython while "
                              "the CIRCUITPY drive is mounted over USB)")
    assert "boot.py" in message and "storage.remount('/', readonly=False)" in message


B64_SCRIPT = """
from microrl import weights
print(json.dumps({"binascii": weights.binascii is not None,
                  "texts": [weights.encode_chunk(bytes(range(200, 200 + n)))[0] for n in range(8)],
                  "back": [list(weights.decode_chunk(*weights.encode_chunk(bytes(range(n)))))
                           for n in (1, 2, 3, 100)]}))
errors = []
for text in ("QUJD*", "Q", ""):
    try:
        weights.decode_chunk(text, 0)
    except weights.WeightsError as e:
        errors.append(str(e))
print(json.dumps({"errors": errors}))
"""


@pytest.mark.parametrize("name", INTERPRETERS)
def test_weights_chunks_without_binascii_match_base64(name):
    out, errors = on_board(B64_SCRIPT, name, extra_path=[NO_BINASCII_DIR])
    assert out["binascii"] is False
    assert out["texts"] == [base64.b64encode(bytes(range(200, 200 + n))).decode()
                            for n in range(8)]
    assert out["back"] == [list(range(n)) for n in (1, 2, 3, 100)]
    assert errors == {"errors": ["chunk is empty or not valid base64"] * 3}
    with_binascii, _ = on_board(B64_SCRIPT, name)
    assert with_binascii["binascii"] is True and with_binascii["texts"] == out["texts"]


def test_clock_on_cpython_wraps_like_the_board_ticks():
    out = run_device("from microrl import clock\nimport time\nt = clock.ticks_us()\n"
                     "time.sleep(0.05)\nprint(json.dumps([clock.ticks_diff(clock.ticks_us(), t),"
                     " clock.ticks_us() < 1 << 29, clock.ticks_ms() < 1 << 29,"
                     " clock.ticks_diff(2, (1 << 29) - 2)]))", engine="cpython")
    assert 45000 < out[0] < 1000000 and out[1:] == [True, True, 4]


class _ScriptedTransport:
    """Gives the board's output in the pieces a serial port might deliver."""

    port = "scripted"

    def __init__(self, pieces):
        self.pieces = list(pieces)
        self.written = b""

    def write(self, data):
        self.written += data

    def read(self, timeout_s):
        return self.pieces.pop(0) if self.pieces else b""

    def discard_input(self):
        pass

    def close(self):
        pass


STATUS_BAR = "\x1b]0;\N{SNAKE}192.168.1.7 | code.py | 10.3.0\x1b\\".encode()


def test_link_ignores_status_bar_sequences_before_a_reply():
    from microrl_host.board.link import BoardLink

    reply = b'{"v": 1, "id": 1, "ok": true, "implementation": "circuitpython"}\n'
    link = BoardLink(_ScriptedTransport([STATUS_BAR[:9], STATUS_BAR[9:] + reply[:20],
                                         reply[20:] + STATUS_BAR + b"\x1b]0;\x1b\\",
                                         b'\x1b[2K{"v": 1, "id": 2, "ok": true, "n": 5}\n']))
    assert link.request("hello")["implementation"] == "circuitpython"
    assert link.request("bench")["n"] == 5
    assert link.noise == []


# The host side: deploying to a CIRCUITPY drive or over the REPL, and CircuitPython's .mpy files.

def _drive(tmp_path):
    drive = tmp_path / "CIRCUITPY"
    drive.mkdir()
    (drive / "boot_out.txt").write_text("Adafruit CircuitPython 10.3.0 on 2025-10-01; Raspberry "
                                        "Pi Pico with rp2040\nBoard ID:raspberry_pi_pico\n")
    return drive


def test_drive_deploy_writes_the_circup_layout_and_the_board_boots_it(tmp_path):
    from boardkit import cli

    drive = _drive(tmp_path)
    (drive / "lib" / "microrl").mkdir(parents=True)
    (drive / "lib" / "microrl" / "stale.py").write_text("raise ImportError\n")
    (drive / "lib" / "other.py").write_text("x = 1\n")
    proc = cli("deploy", "--drive", drive, "--board", "rp2-pico", "--config",
               json.dumps({"actor_hidden": [8, 8], "critic_hidden": [8, 8], "batch_size": 8}))
    assert proc.returncode == 0, proc.stderr
    assert "Raspberry Pi Pico with rp2040" in proc.stdout
    sources = sorted(p.name for p in (DEVICE_DIR / "microrl").glob("*.py"))
    assert sorted(p.name for p in (drive / "lib" / "microrl").iterdir()) == sources
    assert (drive / "lib" / "other.py").read_text() == "x = 1\n"  # the user's libraries stay
    assert (drive / "code.py").read_text() == (DEVICE_DIR / "main.py").read_text()
    assert not (drive / "main.py").exists()
    settings = json.loads((drive / "microrl.json").read_text())
    assert settings["board"] == "rp2-pico" and settings["mode"] == "serve"
    assert settings["config"]["actor_hidden"] == [8, 8] and settings["config"]["batch_size"] == 8
    # Boot it as a board would: code.py from the drive's root, microrl from lib/, a board's time.
    script = ("import sys\nsys.path[:0] = [%r, '', 'lib']\nexec(open('code.py').read())\n"
              % str(BOARD_DIR))
    proc = subprocess.run([micropython_path(), "-X", "heapsize=4M", "-c", script],
                          input=_requests({"cmd": "hello"}, {"cmd": "reset"}),
                          capture_output=True, text=True, timeout=120, cwd=drive)
    ready, hello, reset = [json.loads(line) for line in proc.stdout.splitlines()]
    assert ready["event"] == "ready" and hello["ok"] and hello["learner"] is None
    assert reset["ok"] and reset["config"]["actor_hidden"] == [8, 8]
    # Deploying again replaces our own code.py without being asked; train mode needs boot.py.
    proc = cli("deploy", "--drive", drive, "--mode", "train")
    assert proc.returncode == 0 and "board cannot save its weights file" in proc.stdout
    assert json.loads((drive / "microrl.json").read_text())["mode"] == "train"
    (drive / "boot.py").write_text("import storage\nstorage.remount('/', readonly=False)\n")
    proc = cli("deploy", "--drive", drive, "--mode", "train")
    assert proc.returncode == 0 and "cannot save" not in proc.stdout


@pytest.mark.parametrize("setup,args,message", [
    ("nothing", [], "is not a directory: pass the mount point of the CIRCUITPY drive"),
    ("no boot_out", [], "has no boot_out.txt, so it is not a CircuitPython drive"),
    ("own code.py", [], "the board has a code.py of its own: pass --boot"),
    ("drive", ["--config", '{"batch_size": 0}'], "bad config for board profile default: batch_size must be"),
    ("drive", ["--mpy"], "writes MicroPython .mpy files, which CircuitPython does not load: pass "
                         "CircuitPython's own mpy-cross as --mpy-cross"),
    ("drive", ["--mpy", "--native"], "--native is not for CircuitPython: its builds load no "
                                     "native code"),
])
def test_drive_deploy_refuses_what_would_not_work(tmp_path, setup, args, message):
    from boardkit import cli

    if setup == "nothing":
        drive = tmp_path / "absent"
    elif setup == "no boot_out":
        drive = tmp_path
    else:
        drive = _drive(tmp_path)
        if setup == "own code.py":
            (drive / "code.py").write_text("print('my project')\n")
    proc = cli("deploy", "--drive", drive, *args)
    assert proc.returncode == 1 and message in proc.stderr
    assert not (drive / "lib").exists() and not (drive / "microrl.json").exists()
    if setup == "own code.py":
        assert (drive / "code.py").read_text() == "print('my project')\n"
        assert cli("deploy", "--drive", drive, "--boot").returncode == 0
        assert (drive / "code.py").read_text() == (DEVICE_DIR / "main.py").read_text()


CP_ENOENT = ("Traceback (most recent call last):\r\n  File \"<stdin>\", line 1, in <module>\r\n"
             "OSError: [Errno 2] No such file/directory\r\n")


def test_mpremote_is_taught_circuitpythons_wording_of_enoent():
    from mpremote import transport

    error = transport.TransportExecError(1, CP_ENOENT)
    assert not isinstance(transport._convert_filesystem_error(error, "x"), OSError)
    code = ("import sys, errno\nfrom microrl_host.board import circuitpy\n"
            "circuitpy._convert_circuitpython_errors()\nfrom mpremote import transport\n"
            "e = transport._convert_filesystem_error(transport.TransportExecError(1, %r), 'x')\n"
            "print(type(e).__name__, e.errno == errno.ENOENT)\n"
            "e = transport._convert_filesystem_error(transport.TransportExecError(1, 'boom'), 'x')"
            "\nprint(type(e).__name__)\n" % CP_ENOENT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["FileNotFoundError", "True", "TransportExecError"], out.stderr


def test_repl_deploy_copies_the_layout_through_the_workaround_and_serves(tmp_path):
    from boardkit import SMALL as BOARD_SMALL
    from microrl_host.board import circuitpy
    from microrl_host.board.vboard import VirtualBoard

    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "main.py").write_text("print('not started')\n")
    settings = {"board": "default", "mode": "serve", "config": BOARD_SMALL}
    with VirtualBoard(2 * 1024 * 1024, flash_dir=flash) as board:
        hello = circuitpy.deploy_repl(board.port, settings, log=lambda text: None)
    sources = sorted(p.name for p in (DEVICE_DIR / "microrl").glob("*.py"))
    assert sorted(p.name for p in (flash / "lib" / "microrl").iterdir()) == sources
    assert (flash / "code.py").read_text() == (DEVICE_DIR / "main.py").read_text()
    assert (flash / "main.py").read_text() == "print('not started')\n"
    assert json.loads((flash / "microrl.json").read_text())["config"] == BOARD_SMALL
    assert hello["ok"] and hello["implementation"] == "micropython"  # served by code.py


MOUNTED_STORAGE = """# CircuitPython's storage while the CIRCUITPY drive is mounted over USB
class _Mount:
    readonly = True


def getmount(path):
    return _Mount()
"""


def test_repl_deploy_to_a_mounted_board_says_to_use_the_drive(tmp_path):
    from microrl_host.board import circuitpy
    from microrl_host.board.deploy import DeployError
    from microrl_host.board.vboard import VirtualBoard

    flash = tmp_path / "flash"
    (flash / "lib").mkdir(parents=True)
    (flash / "lib" / "storage.py").write_text(MOUNTED_STORAGE)
    with VirtualBoard(2 * 1024 * 1024, flash_dir=flash) as board:
        with pytest.raises(DeployError) as error:
            circuitpy.deploy_repl(board.port, {"mode": "serve", "config": {}},
                                  log=lambda text: None)
    assert str(error.value) == circuitpy.READ_ONLY
    assert "copy to the drive instead with --drive PATH" in str(error.value)
    assert sorted(p.name for p in flash.rglob("*")) == ["lib", "storage.py"]  # nothing copied


FAKE_MPY_CROSS = """#!/bin/sh
# says it is CircuitPython's, and writes a file with its header byte wherever -o points
if [ "$1" = "--version" ]; then echo "CircuitPython 10.3.0; mpy-cross emitting mpy v6.3"; exit 0; fi
while [ $# -gt 0 ] && [ "$1" != "-o" ]; do shift; done
printf 'C\\006\\000\\037' > "$2"
"""


def test_mpy_flavour_by_header_byte_and_sim_rejects_a_foreign_mpy_cross(tmp_path):
    from boardkit import cli
    from microrl_host.board import circuitpy
    from microrl_host.board.mpy import VIPER_MODULES, mpy_cross_command

    fake = tmp_path / "cp-mpy-cross"
    fake.write_text(FAKE_MPY_CROSS)
    fake.chmod(0o755)
    assert circuitpy.mpy_flavour(fake) == "circuitpython"
    assert circuitpy.mpy_flavour() == "micropython"  # the installed one
    assert mpy_cross_command(fake) == [str(fake)]
    proc = cli("sim", "--engine", "micropython", "--mpy-cross", fake, "--steps", "200",
               "--out", tmp_path / "sim")
    assert proc.returncode == 2
    assert ("writes CircuitPython .mpy files, which MicroPython does not load: pass MicroPython's "
            "own mpy-cross as --mpy-cross") in proc.stderr
    assert not (tmp_path / "sim" / "run.json").exists()
    proc = cli("mpy", "--out", tmp_path / "mpy", "--mpy-cross", fake)
    assert proc.returncode == 0 and "(mpy v6.3)" in proc.stdout, proc.stderr
    compiled = sorted((tmp_path / "mpy" / "microrl").glob("*.mpy"))
    sources = sorted(p.stem for p in (DEVICE_DIR / "microrl").glob("*.py"))
    assert [p.stem for p in compiled] == [m for m in sources if m not in VIPER_MODULES]
    assert {p.read_bytes()[:1] for p in compiled} == {b"C"}


@needs_circuitpython
def test_circuitpython_board_over_the_repl_deploys_mpy_serves_benches_and_trains(tmp_path):
    """The whole path on a CircuitPython unix build with a board's modules frozen in."""
    from boardkit import PROFILE, SMALL as BOARD_SMALL
    from microrl_host.board import deploy
    from microrl_host.board.link import BoardLink
    from microrl_host.board.mpy import VIPER_MODULES
    from microrl_host.board.transport import VirtualTransport
    from microrl_host.board.vboard import VirtualBoard

    flash = tmp_path / "flash"
    (flash / "lib").mkdir(parents=True)
    for shim in BOARD_DIR.glob("*.py"):
        (flash / "lib" / shim.name).write_text(shim.read_text())
    with VirtualBoard(4 * 1024 * 1024, CIRCUITPYTHON, flash) as board:
        hello = deploy.deploy(board.port, PROFILE, compiled=True, config=BOARD_SMALL,
                              mpy_cross=CIRCUITPYTHON_MPY_CROSS, log=lambda text: None)
        assert hello["implementation"] == "circuitpython" and hello["ulab"].startswith("6.5.3")
        # viper code compiles only for a target architecture, so it stays source (and unused)
        modules = sorted(p.stem for p in (DEVICE_DIR / "microrl").glob("*.py"))
        assert sorted(p.name for p in (flash / "lib" / "microrl").iterdir()) == sorted(
            m + (".py" if m in VIPER_MODULES else ".mpy") for m in modules)
        assert (flash / "lib" / "microrl" / "clock.mpy").read_bytes()[:1] == b"C"
        with BoardLink(VirtualTransport(board=board), timeout_s=30) as link:
            link.connect()
            bench = link.request("bench", name="trainer_step", repeat=20)
            assert 0 < bench["min_us"] <= bench["median_us"] <= bench["max_us"] < 1000000
            events = []
            train = link.request("train", steps=300, on_event=events.append)
            total = train["total_steps"]  # the benchmark trained the learner first
            assert train["steps"] == 300 and total > 300
            assert [e["step"] for e in events] == list(range(200 * ((total - 300) // 200 + 1),
                                                             total + 1, 200))
            assert all(-2000 < e["return"] < 0 for e in events)


@needs_circuitpython
def test_circuitpython_whole_sim_with_its_own_mpy(tmp_path):
    from boardkit import cli

    proc = cli("sim", "--engine", "micropython", "--micropython", CIRCUITPYTHON, "--mpy-cross",
               CIRCUITPYTHON_MPY_CROSS, "--board", "rp2-pico", "--steps", "1200", "--seed", "2",
               "--out", tmp_path, "--json", timeout_s=600)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert run["engine_info"]["package"] == "circuitpython .mpy"
    assert run["engine_info"]["backend"] == "ulab"
    assert len(run["episode_returns"]) == 6 and -2000 < run["final_eval_return"] < 0
