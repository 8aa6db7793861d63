"""The device code as a CircuitPython 10 board runs it, on the unix `micropython`: the modules in
tests/data/circuitpy_board shadow the port's own (a `time` with only a board's functions, a
`supervisor` whose ticks_ms wraps 1.5 s after import, no `select`), so the clock and the stdin
paths are the ones a board takes. Where $CIRCUITPYTHON names a CircuitPython unix build, the same
scripts run on it too."""

import base64
import json
import os
import subprocess

import pytest

from devicerun import DEVICE_DIR, micropython_path, run_device

BOARD_DIR = DEVICE_DIR.parent / "tests" / "data" / "circuitpy_board"
NO_BINASCII_DIR = DEVICE_DIR.parent / "tests" / "data" / "no_binascii"
BOARD_TIME = ["localtime", "mktime", "monotonic", "monotonic_ns", "sleep", "struct_time", "time"]
SMALL = {"actor_hidden": [8, 8], "critic_hidden": [8, 8], "batch_size": 8,
         "buffer_capacity": 500, "learning_starts": 50, "eval_episodes": 1, "episode_steps": 50,
         "eval_every": 0}
CIRCUITPYTHON = os.environ.get("CIRCUITPYTHON")
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
t_ms, t_us = clock.ticks_ms(), clock.ticks_us()
time.sleep(0.2)
short_us = clock.ticks_diff(clock.ticks_us(), t_us)
before_wrap = supervisor.ticks_ms()
time.sleep(1.6)
print(json.dumps({"names": names, "has_ticks": hasattr(time, "ticks_ms"),
                  "supervisor_clock": clock.ticks_ms is supervisor.ticks_ms,
                  "before_wrap": before_wrap, "after_wrap": supervisor.ticks_ms(),
                  "elapsed_s": clock.elapsed_s(t_ms), "short_us": short_us,
                  "diffs": [clock.ticks_diff(5, (1 << 29) - 5), clock.ticks_diff(3, 10),
                            clock.ticks_diff((1 << 29) - 1, 0)]}))
"""


@pytest.mark.parametrize("name", INTERPRETERS)
def test_clock_uses_supervisor_and_monotonic_ns_where_time_has_no_ticks(name):
    out, = on_board(CLOCK_SCRIPT, name)
    assert out["names"] == BOARD_TIME and not out["has_ticks"]
    assert out["supervisor_clock"]
    assert out["before_wrap"] > (1 << 29) - 1500 and out["after_wrap"] < 1000  # it wrapped
    assert 1.75 < out["elapsed_s"] < 3.0  # measured across the wrap
    assert 190000 < out["short_us"] < 1000000
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


def test_read_only_flash_stops_train_mode_before_training_with_the_boot_py_recipe():
    lines = on_board(READ_ONLY_SCRIPT % (SMALL,))
    assert len(lines) == 1  # no episode ran: the check comes first
    message = lines[0]["error"]
    assert message.startswith("actor.bin: the flash is read-only to code")
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


def test_weights_chunks_without_binascii_match_base64():
    out, errors = on_board(B64_SCRIPT, extra_path=[NO_BINASCII_DIR])
    assert out["binascii"] is False
    assert out["texts"] == [base64.b64encode(bytes(range(200, 200 + n))).decode()
                            for n in range(8)]
    assert out["back"] == [list(range(n)) for n in (1, 2, 3, 100)]
    assert errors == {"errors": ["chunk is empty or not valid base64"] * 3}
    with_binascii, _ = on_board(B64_SCRIPT)
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
