"""The board link: speaks protocol v1 (see device/microrl/protocol.py) over any Transport.

Each call sends one request with a fresh id and waits for the reply carrying that id; events with
that id (``train``'s episodes, ``get_weights``' chunks) go to a callback as they arrive; replies to
older, abandoned requests are skipped. ``timeout_s`` is the longest the board may stay silent: every
message restarts it, so a long run that reports each episode never times out, while a hung board is
reported (BoardTimeout) within one timeout. Output that only the firmware prints (its banner, REPL
prompt, a traceback) or a fresh ``ready`` announcement means the serve loop is gone: BoardReset.
"""

import base64
import json
import re
import time
import zlib

from microrl_host.board.transport import BoardError, BoardReset, BoardTimeout, ProtocolViolation

PROTOCOL_VERSION = 1
CHUNK_BYTES = 768
# Printed by the firmware, never by the serve loop (MicroPython, CircuitPython, ESP32 ROM): at a
# restart (banner, REPL prompt, ROM boot lines), and at the REPL.
RESTART_MARKERS = (b"MicroPython ", b"soft reboot", b"Adafruit CircuitPython", b"Auto-reload",
                   b"rst:0x", b"ESP-ROM:", b">>> ")
_CONSOLE_MARKERS = RESTART_MARKERS + (b"raw REPL; CTRL-B", b"Traceback (most recent")
_PROMPTS = (b">>> ", b"raw REPL; CTRL-B to exit\r\n>")
# Terminal control sequences that CircuitPython's status bar writes to the console, without a
# newline, so that one may stand before a reply: OSC (ESC ] ... BEL or ESC \) and CSI (ESC [ ...).
CONSOLE_ESCAPES = re.compile(rb"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b\[[0-?]*[ -/]*[@-~]")
_TAIL_S = 0.3  # how long to gather the rest of the console text for the error message
_HELLO_RETRY_S = 1.0
_RETRY_PAUSE_S = 0.1


class BoardLink:
    """A client of one board's serve loop."""

    def __init__(self, transport, timeout_s=10.0):
        self.transport = transport
        self.timeout_s = timeout_s
        self._next_id = 1
        self._pending = bytearray()
        self.board = None  # the hello reply of the last connect()
        self.noise = []  # lines that were neither protocol messages nor firmware output

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Wire level

    def send_raw(self, data):
        """Write bytes as they are (for tests of the board's robustness)."""
        self.transport.write(data)

    def connect(self, timeout_s=None):
        """Synchronise with the serve loop: drop stale input, end any half-written line (mpremote
        leaves one behind), and say hello, again every second while the board is still booting
        (input sent before it is up is lost). Returns the hello reply."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        self.transport.discard_input()
        self._pending.clear()
        while True:
            remaining = deadline - time.monotonic()
            try:
                self.transport.write(b"\n")
                self.board = self.request("hello", _ready_ok=True,
                                          timeout_s=max(0.0, min(_HELLO_RETRY_S, remaining)))
                return self.board
            except BoardTimeout as e:
                if time.monotonic() + _RETRY_PAUSE_S >= deadline:
                    raise BoardTimeout("no answer from %s to hello within %.1f s: is the board "
                                       "serving?" % (self.transport.port, timeout_s)) from e
                time.sleep(_RETRY_PAUSE_S)

    def request(self, cmd, timeout_s=None, on_event=None, _ready_ok=False, **args):
        """Send ``cmd`` with ``args`` (None values left out); the reply dict, or BoardError."""
        return self.wait_reply(self.send(cmd, **args), cmd, timeout_s, on_event, _ready_ok)

    def send(self, cmd, **args):
        """Send ``cmd`` with ``args`` (None values left out) without waiting; returns its id, for
        ``wait_reply``."""
        request_id = self._next_id
        self._next_id += 1
        message = {"v": PROTOCOL_VERSION, "id": request_id, "cmd": cmd}
        message.update({k: v for k, v in args.items() if v is not None})
        # UTF-8 as is: the board refuses \u escapes of surrogates, which non-BMP text would become
        self.transport.write(json.dumps(message, ensure_ascii=False).encode() + b"\n")
        return request_id

    def wait_reply(self, request_id, what="reply", timeout_s=None, on_event=None, ready_ok=False):
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while True:
            message = self._next_message(deadline, what, request_id, timeout_s)
            if message.get("event") == "ready" and message.get("id") is None:
                if ready_ok:
                    continue
                raise BoardReset("the board restarted: its serve loop announced itself again while "
                                 "%s (id %s) was waiting for its reply" % (what, request_id))
            if message.get("id") != request_id:
                continue  # a late reply to an abandoned request, or an error about a stray line
            deadline = time.monotonic() + timeout_s
            if "event" in message:
                if on_event is not None:
                    on_event(message)
                continue
            if message.get("ok"):
                return message
            raise BoardError("%s failed on the board: %s" % (what, message.get("error")), message)

    def next_message(self, timeout_s=None):
        """The next protocol message, whatever its id (for raw exchanges in tests)."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        return self._next_message(time.monotonic() + timeout_s, "a message", None, timeout_s)

    def _next_message(self, deadline, what, request_id, timeout_s):
        while True:
            line = CONSOLE_ESCAPES.sub(b"", self._read_line(deadline, what, request_id, timeout_s))
            if not line.strip():
                continue
            try:
                message = json.loads(line.decode("utf-8", "replace"))
            except ValueError:
                message = None
            if isinstance(message, dict) and message.get("v") == PROTOCOL_VERSION:
                return message
            if any(marker in line for marker in _CONSOLE_MARKERS):
                raise BoardReset("the board left its serve loop (reset, crash or REPL) while %s "
                                 "(id %s) was waiting; it printed:\n%s"
                                 % (what, request_id, self._console_tail(line)))
            self.noise.append(line)
            del self.noise[:-100]

    def _read_line(self, deadline, what, request_id, timeout_s):
        while True:
            end = self._pending.find(b"\n")
            if end >= 0:
                line = bytes(self._pending[:end]).rstrip(b"\r")
                del self._pending[:end + 1]
                return line
            if self._pending.endswith(_PROMPTS):
                raise BoardReset("the board is at its REPL, not in the serve loop, while %s (id %s) "
                                 "was waiting; it printed:\n%s"
                                 % (what, request_id, self._console_tail(b"")))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BoardTimeout("no answer from %s to %s (id %s) within %.1f s"
                                   % (self.transport.port, what, request_id, timeout_s))
            self._pending += self.transport.read(remaining)

    def _console_tail(self, first_line):
        """The firmware text seen so far, plus what follows within a moment (its whole traceback)."""
        end = time.monotonic() + _TAIL_S
        while time.monotonic() < end:
            try:
                self._pending += self.transport.read(end - time.monotonic())
            except BoardReset:
                break
        text = first_line + b"\n" + bytes(self._pending)
        self._pending.clear()
        return text.decode("utf-8", "replace").strip()

    # Commands

    def hello(self, timeout_s=None):
        return self.request("hello", timeout_s=timeout_s)

    def bench(self, name, repeat=10, timeout_s=None):
        return self.request("bench", timeout_s=timeout_s, name=name, repeat=repeat)

    def train(self, steps, seed=None, config=None, on_episode=None, timeout_s=None):
        """Train ``steps`` steps; the final reply, with the episode events under ``episode_events``."""
        events = []

        def collect(event):
            events.append(event)
            if on_episode is not None:
                on_episode(event)
        reply = self.request("train", timeout_s=timeout_s, on_event=collect, steps=steps,
                             seed=seed, config=config)
        reply["episode_events"] = events
        return reply

    def stop(self, timeout_s=None):
        return self.request("stop", timeout_s=timeout_s)

    def evaluate(self, episodes=None, seed=None, timeout_s=None):
        return self.request("eval", timeout_s=timeout_s, episodes=episodes, seed=seed)

    def reset(self, config=None, seed=None, resume=None, timeout_s=None):
        """Re-create the learner (with ``config`` overrides and ``seed``, if given); ``resume``:
        then load the newest valid checkpoint (the reply's ``resumed``; BoardError without one)."""
        return self.request("reset", timeout_s=timeout_s, config=config, seed=seed, resume=resume)

    def _chunked(self, cmd, what, timeout_s=None, **args):
        """(bytes, reply) of a command that streams ``chunk`` events, every chunk and the whole
        CRC-checked against what the board announced."""
        parts = []

        def take(event):
            if event.get("event") != "chunk" or event.get("index") != len(parts):
                raise ProtocolViolation("unexpected event during %s: %r" % (cmd, event))
            data = base64.b64decode(event["data"])
            if zlib.crc32(data) != event["crc32"]:
                raise ProtocolViolation("chunk %d arrived corrupted (CRC32 mismatch)" % len(parts))
            parts.append(data)
        reply = self.request(cmd, timeout_s=timeout_s, on_event=take, **args)
        blob = b"".join(parts)
        if len(blob) != reply["bytes"] or zlib.crc32(blob) != reply["crc32"]:
            raise ProtocolViolation("%s of %d bytes does not match the announced %d bytes and "
                                    "CRC32" % (what, len(blob), reply["bytes"]))
        return blob, reply

    def get_weights(self, chunk_bytes=CHUNK_BYTES, timeout_s=None):
        """The actor's weights blob (see device/microrl/weights.py), every chunk CRC-checked."""
        return self._chunked("get_weights", "weights blob", timeout_s, chunk_bytes=chunk_bytes)[0]

    def files(self, timeout_s=None):
        """The learner's files: {"weights": name, "files": {name: [bytes, crc32] or None},
        "package": {module file: [bytes, crc32]} or None (frozen)}."""
        return self.request("files", timeout_s=timeout_s)

    def read_file(self, file, chunk_bytes=CHUNK_BYTES, timeout_s=None):
        """The bytes of one of the learner's files on the board, every chunk CRC-checked."""
        return self._chunked("read_file", file, timeout_s, file=file, chunk_bytes=chunk_bytes)[0]

    def set_weights(self, blob, chunk_bytes=CHUNK_BYTES, timeout_s=None):
        """Send a weights blob in CRC-checked chunks; the board applies it after the last one."""
        max_line_bytes = (self.board or {}).get("max_line_bytes", 2048)
        if 4 * ((chunk_bytes + 2) // 3) + 200 > max_line_bytes:
            raise ValueError("chunk_bytes %d makes lines longer than the board's %d bytes"
                             % (chunk_bytes, max_line_bytes))
        reply = None
        for offset in range(0, len(blob), chunk_bytes):
            data = bytes(blob[offset:offset + chunk_bytes])
            reply = self.request("set_weights", timeout_s=timeout_s, offset=offset,
                                 bytes=len(blob), data=base64.b64encode(data).decode(),
                                 crc32=zlib.crc32(data))
        if reply is None or not reply.get("applied"):
            raise ProtocolViolation("the board did not apply the weights: %r" % (reply,))
        return reply

    def save_weights(self, file=None, timeout_s=None):
        return self.request("save_weights", timeout_s=timeout_s, file=file)

    def load_weights(self, file=None, timeout_s=None):
        return self.request("load_weights", timeout_s=timeout_s, file=file)
