"""Base64 without binascii, for firmware built without it (some CircuitPython boards): the
weights chunks of ``get_weights`` / ``set_weights`` travel as base64 text."""

_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NONE = 255
_INDEX = bytearray(_NONE for _ in range(256))  # byte -> its 6-bit value, _NONE if not base64
for _k in range(64):
    _INDEX[_B64[_k]] = _k


def b64encode(data):
    """The base64 text of ``data`` (bytes)."""
    out = bytearray(4 * ((len(data) + 2) // 3))
    o = 0
    for i in range(0, len(data), 3):
        n = len(data) - i
        v = data[i] << 16 | (data[i + 1] << 8 if n > 1 else 0) | (data[i + 2] if n > 2 else 0)
        out[o] = _B64[v >> 18]
        out[o + 1] = _B64[(v >> 12) & 63]
        out[o + 2] = _B64[(v >> 6) & 63] if n > 1 else 61  # "="
        out[o + 3] = _B64[v & 63] if n > 2 else 61
        o += 4
    return out.decode()


def b64decode(text):
    """The bytes of base64 ``text``; ValueError when it is not base64."""
    raw = text.encode() if isinstance(text, str) else bytes(text)
    raw = raw.rstrip(b"=")
    if len(raw) % 4 == 1:
        raise ValueError("base64 text of %d characters" % len(text))
    out = bytearray(len(raw) * 3 // 4)
    v = bits = o = 0
    for c in raw:
        k = _INDEX[c]
        if k == _NONE:
            raise ValueError("not a base64 character: %r" % chr(c))
        v = (v << 6 | k) & 0xFFFFFF
        bits += 6
        if bits >= 8:
            bits -= 8
            out[o] = (v >> bits) & 0xFF
            o += 1
    return bytes(out)
