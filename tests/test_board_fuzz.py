"""Fuzz the device command loop under `micropython` (pure-Python backend) through pipes: random bytes,
random text, random JSON and random well-formed requests with random arguments. After each input a
sentinel hello must be answered; every line the board writes must be a protocol message; the loop
never dies. Ctrl-C (0x03) is left out: it is the board's interrupt character and ends the loop by
design (see device/microrl/lineio.py)."""

import json
import subprocess

from hypothesis import HealthCheck, given, settings, strategies as st

from boardkit import SMALL
from devicerun import DEVICE_DIR, micropython_path

COMMANDS = ["hello", "bench", "train", "stop", "eval", "get_weights", "set_weights",
            "save_weights", "load_weights", "reset", "files", "read_file", "", "HELLO", "train ",
            "nope"]
SERVE = ("import sys\nsys.path.insert(0, %r)\nfrom microrl.serve import Server\n"
         "Server({'config': %r}).serve()\n" % (str(DEVICE_DIR), SMALL))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 40), st.floats(allow_nan=False),
                    st.text(max_size=12), st.integers(-2**70, 2**70))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=10)
config_fields = st.sampled_from(["actor_hidden", "critic_hidden", "batch_size", "buffer_capacity",
                                 "gamma", "tau", "learning_starts", "seed", "bogus"])
small_values = st.one_of(st.integers(-2, 12), st.floats(-2, 2),
                         st.lists(st.integers(-1, 6), max_size=3), st.text(max_size=4))
requests = st.fixed_dictionaries(
    {"v": st.sampled_from([1] * 6 + [2, "1", None]),
     "cmd": st.sampled_from(COMMANDS)},
    optional={"id": scalars,
              "steps": st.one_of(st.integers(-2, 60), scalars),
              "repeat": st.integers(-1, 4),
              "name": st.sampled_from(["actor_forward", "td3_update", "env_step",
                                       "replay_sample", "x", ""]),
              "episodes": st.integers(-1, 2),
              "seed": st.one_of(st.integers(-1, 2**33), scalars),
              "config": st.one_of(st.dictionaries(config_fields, small_values, max_size=3),
                                  values),
              "chunk_bytes": st.integers(-1, 3000),
              "offset": st.integers(-1, 1000), "bytes": st.integers(-1, 2000),
              "data": st.one_of(st.text(max_size=40), st.binary(max_size=30).map(
                  lambda b: __import__("base64").b64encode(b).decode())),
              "crc32": st.one_of(st.integers(-1, 2**32), scalars),
              "file": st.sampled_from(["w.bin", "", "no/such/dir.bin", "main.py", "ckpt0.bin",
                                       "actor.bin", "ckpt1.bin"]),
              "resume": st.one_of(st.booleans(), scalars)})
lines = st.one_of(
    st.binary(max_size=300).map(lambda b: b.replace(b"\x03", b"").replace(b"\n", b"")),
    st.text(max_size=200).map(lambda t: t.replace("\x03", "").replace("\n", "").encode()),
    st.sampled_from([b'{"v": 1, "id": 1e400, "cmd": "hello"}', b'{"v": 1, "id": [1], "cmd": "eval"}',
                     b'{"v": 1, "id": -0.0, "cmd": "bench"}', b"\xff" * 5000, b"{" * 3000,
                     b'{"v": 1, "id": "\\ud800", "cmd": "hello"}',
                     b'{"v": 1, "id": 2, "cmd": "\\udfff\\u00e9"}',
                     b'{"v": true, "id": 3, "cmd": "hello"}']),
    values.map(lambda v: json.dumps(v).encode()),
    requests.map(lambda r: json.dumps(r).encode()),
    requests.map(lambda r: json.dumps(r).encode()),
)


class Board:
    def __init__(self, cwd):
        self.proc = subprocess.Popen([micropython_path(), "-X", "heapsize=2M", "-c", SERVE],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=cwd)
        self.next_id = 0
        assert self.read()["event"] == "ready"

    def read(self):
        line = self.proc.stdout.readline()
        assert line, "the loop died (exit %s)" % self.proc.poll()
        message = json.loads(line.decode("utf-8"))  # strict: a host cannot read anything else
        assert isinstance(message, dict) and message["v"] == 1, message
        return message

    def send(self, data):
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def sync(self):
        """Send sentinel hellos until one is answered (not busy); the other messages before it."""
        before = []
        while True:
            self.next_id += 1
            sentinel = "sentinel-%d" % self.next_id
            self.send(json.dumps({"v": 1, "id": sentinel, "cmd": "hello"}).encode())
            while True:
                message = self.read()
                if message.get("id") == sentinel and "ok" in message:
                    break
                before.append(message)
            if message["ok"]:
                return before, message
            assert message["error"].startswith("busy"), message  # a train still running


def test_fuzzed_command_loop_never_dies(tmp_path):
    board = Board(tmp_path)
    counts = {"inputs": 0}
    try:
        @settings(max_examples=600, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(line=lines)
        def one(line):
            counts["inputs"] += 1
            board.send(line)
            before, sentinel = board.sync()
            assert sentinel["ok"] and sentinel["protocol"] == 1
            if line.strip():
                assert before, "no reply to %r" % line[:80]
            for message in before:
                assert "ok" in message or "event" in message
        one()
        assert counts["inputs"] >= 500
        before, hello = board.sync()
        assert hello["ok"] and hello["protocol"] == 1
        assert board.proc.poll() is None
    finally:
        board.proc.stdin.close()
        board.proc.wait(timeout=30)
