"""The board protocol, version 1: one JSON object per line each way over the USB serial.

Request: ``{"v": 1, "id": ID, "cmd": NAME, ...arguments}``; ``id`` is any JSON scalar the host picks.
Reply: ``{"v": 1, "id": ID, "ok": true, ...results}`` or
``{"v": 1, "id": ID, "ok": false, "error": MESSAGE, "type": EXCEPTION, "traceback": TEXT}``.
A command that streams (``train``, ``get_weights``) first sends events ``{"v": 1, "id": ID,
"event": NAME, ...}``, which carry no ``ok``, and ends with one reply. A line that cannot be read as a
request gets an error reply with ``"id": null``. Whitespace-only lines are ignored (the host sends one
to flush a half-written line). The serve loop announces itself with ``{"v": 1, "id": null,
"event": "ready", ...}``, so a host that sees this while waiting knows the board restarted.
"""

import json
import sys

try:
    from io import StringIO
except ImportError:  # a very small port without io
    StringIO = None

VERSION = 1


class ProtocolError(Exception):
    """A request that cannot be served; ``request_id`` is echoed in the error reply."""

    def __init__(self, message, request_id=None):
        super().__init__(message)
        self.request_id = request_id


def finite(x):
    """``x`` as a JSON-safe number: None when it is nan or infinite (JSON has no such numbers)."""
    if x is None or x != x or x in (float("inf"), float("-inf")):
        return None
    return x


def _surrogate_escape(text):
    """The first ``\\uXXXX`` escape of a UTF-16 surrogate in JSON ``text``, else None. MicroPython
    decodes one into a string that is not UTF-8 and would echo it raw in a reply."""
    i = text.find("\\u")
    while i >= 0:
        j = i
        while j > 0 and text[j - 1] == "\\":
            j -= 1
        if (i - j) % 2 == 0:  # not itself an escaped backslash
            escape = text[i:i + 6]
            try:
                code = int(escape[2:], 16)
            except ValueError:
                code = 0
            if 0xD800 <= code <= 0xDFFF:
                return escape
        i = text.find("\\u", i + 2)
    return None


def parse(line, dropped_bytes, max_line_bytes):
    """A request dict from one input line (bytes); raises ProtocolError."""
    if dropped_bytes:
        raise ProtocolError("line too long: %d bytes, at most %d"
                            % (dropped_bytes + len(line), max_line_bytes))
    try:
        text = line.decode() if isinstance(line, (bytes, bytearray)) else line
    except UnicodeError:
        raise ProtocolError("request is not UTF-8 text (%d bytes)" % len(line))
    i = line.find(b"\xed") if text is not line else -1
    while i >= 0:  # ED A0..BF starts an encoded surrogate, which MicroPython's decode lets through
        if i + 1 < len(line) and line[i + 1] >= 0xA0:
            raise ProtocolError("request is not UTF-8 text: a UTF-16 surrogate at byte %d" % i)
        i = line.find(b"\xed", i + 1)
    escape = _surrogate_escape(text)
    if escape is not None:
        raise ProtocolError("request holds %s, half of a UTF-16 surrogate pair: send characters "
                            "outside the BMP as UTF-8" % escape)
    try:
        request = json.loads(text)
    except (ValueError, UnicodeError, TypeError):
        raise ProtocolError("malformed JSON (%d bytes)" % len(line))
    if not isinstance(request, dict):
        raise ProtocolError("a request must be a JSON object")
    request_id = request.get("id")
    if isinstance(request_id, (dict, list)) or (isinstance(request_id, float)
                                                 and finite(request_id) is None):
        raise ProtocolError("id must be a string or a finite number")
    version = request.get("v")
    if isinstance(version, bool) or version != VERSION:  # True == 1 in Python
        raise ProtocolError("unsupported protocol version %r, this board speaks %d"
                            % (request.get("v"), VERSION), request_id)
    if not isinstance(request.get("cmd"), str):
        raise ProtocolError("missing cmd", request_id)
    return request


def traceback_text(exc):
    """The traceback of ``exc`` as text, as the board would print it."""
    if StringIO is None:
        return repr(exc)
    out = StringIO()
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc, out)
        return out.getvalue()
    try:  # CPython, CircuitPython (which has no sys.print_exception)
        import traceback
    except ImportError:  # a CircuitPython build without traceback
        return repr(exc)
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=out)
    return out.getvalue()


class Channel:
    """Writes protocol messages, one JSON line each, to ``stream`` (default stdout)."""

    def __init__(self, stream=None):
        self._stream = stream if stream is not None else sys.stdout

    def _send(self, message):
        self._stream.write(json.dumps(message))
        self._stream.write("\n")
        if hasattr(self._stream, "flush"):
            self._stream.flush()

    def reply(self, request_id, fields=None):
        message = {"v": VERSION, "id": request_id, "ok": True}
        if fields:
            message.update(fields)
        self._send(message)

    def event(self, request_id, name, fields=None):
        message = {"v": VERSION, "id": request_id, "event": name}
        if fields:
            message.update(fields)
        self._send(message)

    def error(self, request_id, message, exc=None):
        out = {"v": VERSION, "id": request_id, "ok": False, "error": message}
        if exc is not None:
            out["type"] = type(exc).__name__
            out["traceback"] = traceback_text(exc)
        self._send(out)
