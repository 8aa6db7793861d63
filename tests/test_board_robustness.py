"""The serve loop survives bad input and busy periods; the host tells a silent board (BoardTimeout,
within its timeout) from a reset one (BoardReset), and keeps every result received before a reset."""

import json
import os
import random
import re
import time
import zlib

import pytest

from boardkit import deployed_board, link_to
from microrl_host.bench.runner import BENCHMARKS, run_suite
from microrl_host.board.transport import BoardError, BoardReset, BoardTimeout


@pytest.fixture(scope="module")
def board():
    with deployed_board() as b:
        yield b


def _error_reply(link, data):
    """Send one line of raw bytes; the board's error reply about it."""
    link.send_raw(data + b"\n")
    reply = link.next_message(timeout_s=10)
    assert reply["v"] == 1 and reply["ok"] is False, reply
    return reply


def test_bad_input_gets_error_replies_and_the_loop_serves_on(board):
    rng = random.Random(7)
    garbage = bytes(rng.choice([b for b in range(256) if b not in (3, 10)]) for _ in range(3000))
    with link_to(board) as link:
        malformed = _error_reply(link, b'{"v": 1, "id": 5, "cmd": ')
        assert malformed["id"] is None and "malformed JSON" in malformed["error"]
        unknown = _error_reply(link, b'{"v": 1, "id": 6, "cmd": "fly"}')
        assert unknown["id"] == 6 and "unknown command 'fly'" in unknown["error"]
        version = _error_reply(link, b'{"v": 9, "id": 7, "cmd": "hello"}')
        assert version["id"] == 7 and "protocol version" in version["error"]
        long_line = _error_reply(link, b"x" * 65536)
        assert "line too long: 65536 bytes, at most 2048" in long_line["error"]
        binary = _error_reply(link, garbage)
        assert binary["id"] is None
        with pytest.raises(BoardError, match="batch_size must be a positive integer") as err:
            link.reset(config={"batch_size": 0})
        assert err.value.error_type == "ValueError" and "Traceback" in err.value.board_traceback
        with pytest.raises(BoardError, match="steps must be an integer"):
            link.request("train", steps="many")
        with pytest.raises(BoardError, match="not training"):
            link.stop()
        assert link.hello()["protocol"] == 1


def test_surrogate_escapes_and_a_boolean_version_are_rejected_with_a_safe_id(board):
    with link_to(board) as link:
        # MicroPython decodes "\ud800" into a string that is not UTF-8; echoed raw, the reply is
        # not UTF-8 either (read here with replacement characters; a strict host fails).
        lone = _error_reply(link, b'{"v": 1, "id": "\\ud800", "cmd": "hello"}')
        assert lone["id"] is None and "\ufffd" not in json.dumps(lone)
        assert lone["error"] == ("request holds \\ud800, half of a UTF-16 surrogate pair: send "
                                 "characters outside the BMP as UTF-8")
        pair = _error_reply(link, b'{"v": 1, "id": 4, "cmd": "\\ud83d\\ude00"}')
        assert pair["id"] is None and "\\ud83d" in pair["error"]
        escaped = _error_reply(link, b'{"v": 1, "id": "a\\\\ud800", "cmd": "fly"}')
        assert escaped["id"] == "a\\ud800" and "unknown command 'fly'" in escaped["error"]
        raw = _error_reply(link, b'{"v": 1, "id": "\xed\xa0\x80", "cmd": "hello"}')
        assert raw["id"] is None
        assert raw["error"] == "request is not UTF-8 text: a UTF-16 surrogate at byte 16"
        bad = _error_reply(link, b'{"v": 1, "id": "\xff", "cmd": "hello"}')
        assert bad["id"] is None and bad["error"] == "request is not UTF-8 text (35 bytes)"
        link.send_raw(b'{"v": 1, "id": "\xf0\x9f\x98\x80", "cmd": "hello"}\n')  # raw UTF-8 is fine
        emoji = link.next_message(timeout_s=10)
        assert emoji["ok"] and emoji["id"] == "\U0001f600"
        version = _error_reply(link, b'{"v": true, "id": 8, "cmd": "hello"}')
        assert version["id"] == 8
        assert version["error"] == "unsupported protocol version True, this board speaks 1"
        assert link.hello()["protocol"] == 1


def test_weights_files_are_restricted_to_the_learners_own(board):
    with link_to(board) as link:
        for name in ("main.py", "microrl.json", "../actor.bin", "lib/microrl/w.bin", "ckpt0.bin",
                     "actor.bin.tmp", ".bin", "x" * 29 + ".bin"):
            for command in (link.save_weights, link.load_weights):
                with pytest.raises(BoardError, match="file must be actor.bin or a name like "
                                                     "actor.bin .*, got '%s'" % re.escape(name)):
                    command(file=name)
        with pytest.raises(BoardError, match="got 5"):
            link.save_weights(file=5)
        # Sent as UTF-8 (not as \ud83d\ude00, which the board refuses), it arrives as one character.
        with pytest.raises(BoardError, match=re.escape("got '\\U0001f600.bin'")):
            link.save_weights(file="\U0001f600.bin")
        saved = link.save_weights(file="run-2_b.bin")
        assert saved["file"] == "run-2_b.bin" and saved["bytes"] > 0
        assert link.load_weights(file="run-2_b.bin")["bytes"] == saved["bytes"]
        assert link.save_weights()["file"] == "actor.bin"
        assert link.hello()["protocol"] == 1


def test_read_file_serves_only_the_learners_files_and_files_lists_them(board):
    with link_to(board) as link:
        for name in ("main.py", "microrl.json", "../actor.bin", "lib/microrl/serve.py",
                     "actor.bin.tmp", "ckpt0.bin.tmp", ".bin", 7):
            with pytest.raises(BoardError, match="file must be actor.bin, a checkpoint slot "
                                                 r"\(ckpt0.bin, ckpt1.bin\) or a name like "
                                                 "actor.bin .*, got %s" % re.escape(repr(name))):
                link.read_file(name)
        with pytest.raises(BoardError, match="no file ckpt1.bin on the board"):
            link.read_file("ckpt1.bin")
        with pytest.raises(BoardError, match=r"chunk_bytes must be in \[16, 2048\], got 8"):
            link.read_file("actor.bin", chunk_bytes=8)
        with pytest.raises(BoardError, match="resume must be true or false, got 1"):
            link.reset(resume=1)
        link.save_weights(file="listed.bin")
        blob = link.read_file("listed.bin", chunk_bytes=100)
        assert blob == link.get_weights() and len(blob) > 200  # several chunks
        listing = link.files()
        assert listing["weights"] == "actor.bin"
        assert set(listing["files"]) == {"actor.bin", "ckpt0.bin", "ckpt1.bin"}
        assert listing["files"]["ckpt1.bin"] is None
        package = board.flash_dir + "/lib/microrl/"
        on_flash = sorted(os.listdir(package))
        assert sorted(listing["package"]) == on_flash and "serve.py" in on_flash
        with open(package + "serve.py", "rb") as f:
            data = f.read()
        assert listing["package"]["serve.py"] == [len(data), zlib.crc32(data)]


def test_command_during_training_is_busy_and_training_goes_on(board):
    with link_to(board) as link:
        link.send_raw(b'{"v": 1, "id": "run", "cmd": "train", "steps": 100000}\n')
        first = link.next_message(timeout_s=10)
        assert first["id"] == "run" and first["event"] == "episode"
        link.send_raw(b'{"v": 1, "id": "h", "cmd": "hello"}\n')
        link.send_raw(b"not json\n")
        busy = []
        while len(busy) < 2:
            message = link.next_message(timeout_s=10)
            if message.get("event") != "episode":
                busy.append(message)
        assert busy[0] == {"v": 1, "id": "h", "ok": False,
                           "error": "busy: training (send stop to end it)"}
        assert busy[1]["id"] is None and "malformed" in busy[1]["error"]
        link.send_raw(b'{"v": 1, "id": "s", "cmd": "stop"}\n')
        messages = []
        while not messages or messages[-1].get("id") != "run" or "ok" not in messages[-1]:
            messages.append(link.next_message(timeout_s=10))
        assert {"v": 1, "id": "s", "ok": True, "stopping": True} in messages
        final = messages[-1]
        assert final["ok"] and final["stopped"] and 200 <= final["steps"] < 100000
        assert link.hello()["learner"]["steps"] >= final["steps"]


def test_silent_board_raises_timeout_within_its_timeout(board):
    with link_to(board) as link:
        board.pause()
        try:
            started = time.monotonic()
            with pytest.raises(BoardTimeout, match="within 1.0 s"):
                link.hello(timeout_s=1.0)
            elapsed = time.monotonic() - started
        finally:
            board.resume()
        assert 1.0 <= elapsed < 3.0  # the timeout, plus scheduling on a loaded machine
        assert link.hello()["protocol"] == 1  # the late reply is skipped, the link goes on


def test_reset_mid_run_is_reported_and_earlier_results_kept(tmp_path):
    with deployed_board() as board, link_to(board) as link:
        boots = board.boots

        def reset_after_two(result):
            if result["name"] == BENCHMARKS[1]:
                board.reset()
        with pytest.raises(BoardReset, match="restarted"):
            run_suite(link, BENCHMARKS, 3, tmp_path, link.hello(), on_result=reset_after_two)
        doc = json.loads((tmp_path / "results.json").read_text())
        assert doc["status"] == "reset" and "restarted" in doc["error"]
        assert [r["name"] for r in doc["results"]] == list(BENCHMARKS[:2])
        assert board.boots == boots + 1
        assert "reset" in (tmp_path / "results.md").read_text()
        link.connect()  # the board booted into main.py again and serves
        assert link.hello()["learner"] is None


def test_ctrl_c_ends_the_loop_and_the_link_sees_the_repl(board):
    with link_to(board) as link:
        link.send_raw(b"\x03")
        with pytest.raises(BoardReset, match="KeyboardInterrupt"):
            link.hello(timeout_s=5)
        board.reset()  # boot into main.py again for the other tests
        link.connect(timeout_s=10)


def test_vanished_port_is_a_reset():
    with deployed_board() as board:
        with link_to(board) as link:
            board.stop()
            with pytest.raises(BoardReset):
                link.hello(timeout_s=5)
