"""The actor's weights as one compact binary blob: the weights file on flash and the payload of
``get_weights`` / ``set_weights``, sent in base64 chunks that each carry a CRC32.

Layout, little-endian: ``b"MRLW"``, format version (u8, 1), typecode (u8, ``f`` float32 or ``d``
float64), number of layer sizes L + 1 (u8), 0 (u8), the sizes (u16 each: inputs, hidden..., outputs),
then for each layer W (inputs x outputs, row-major) and b (outputs). The typecode is the precision the
board stores, so a blob read back from the same board is bit for bit what it holds.
"""

import struct

try:
    import binascii
except ImportError:  # firmware built without binascii (some CircuitPython boards)
    binascii = None
    from .b64 import b64decode, b64encode

from .backend import STORE_BITS, K

MAGIC = b"MRLW"
FORMAT_VERSION = 1
_HEADER = "<4sBBBB"
_HEADER_BYTES = 8

_crc32 = getattr(binascii, "crc32", None)
_EROFS = 30  # errno of a write to a read-only filesystem
READ_ONLY_HELP = (
    "%s: flash is read-only to code (on CircuitPython while the CIRCUITPY drive is mounted over "
    "USB). To save weights, put `import storage; storage.remount('/', readonly=False)` in boot.py "
    "on the drive and reset the board (the computer then sees the drive read-only; undo with "
    "`import os; os.remove('boot.py')` at the REPL), or serve and fetch them with get_weights")


class WeightsError(ValueError):
    """A blob or chunk that does not fit: bad magic, other shapes, a CRC mismatch."""


def crc32(data, crc=0):
    """CRC-32 (the zlib one) of ``data`` as an unsigned int; ``crc``: that of the bytes before."""
    if _crc32 is not None:
        return _crc32(data, crc) & 0xFFFFFFFF
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)  # the bytes of an array, not its elements
    crc ^= 0xFFFFFFFF  # bitwise fallback for firmware built without binascii.crc32
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def layer_sizes(params):
    """(inputs, hidden..., outputs) of a network given as [W1, b1, W2, b2, ...]."""
    sizes = [K.shape(params[0])[0]]
    for k in range(0, len(params), 2):
        sizes.append(K.shape(params[k])[1])
    return sizes


def _typecode(bits):
    return "d" if bits == 64 else "f"


def blob_size(params, store_bits=STORE_BITS):
    count = 0
    for p in params:
        rows, cols = K.shape(p)
        count += rows * cols
    return _HEADER_BYTES + 2 * (len(params) // 2 + 1) + count * (8 if store_bits == 64 else 4)


def pack(params, store_bits=STORE_BITS):
    """The blob of ``params`` (a bytearray)."""
    code = _typecode(store_bits)
    sizes = layer_sizes(params)
    blob = bytearray(blob_size(params, store_bits))
    struct.pack_into(_HEADER, blob, 0, MAGIC, FORMAT_VERSION, ord(code), len(sizes), 0)
    offset = _HEADER_BYTES
    for s in sizes:
        struct.pack_into("<H", blob, offset, s)
        offset += 2
    fmt = "<" + code
    step = 8 if code == "d" else 4
    get = K.get
    for p in params:
        rows, cols = K.shape(p)
        for i in range(rows):
            for j in range(cols):
                struct.pack_into(fmt, blob, offset, get(p, i, j))
                offset += step
    return blob


def unpack_into(params, blob):
    """Write the blob's weights into ``params`` in place; raises WeightsError if it does not fit."""
    if len(blob) < _HEADER_BYTES:
        raise WeightsError("weights blob too short: %d bytes" % len(blob))
    magic, version, code, n_sizes, _ = struct.unpack_from(_HEADER, blob, 0)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise WeightsError("not a microrl weights blob (magic %r, version %d)" % (magic, version))
    code = chr(code)
    if code not in ("f", "d"):
        raise WeightsError("unknown typecode %r" % code)
    sizes = [struct.unpack_from("<H", blob, _HEADER_BYTES + 2 * k)[0] for k in range(n_sizes)]
    mine = layer_sizes(params)
    if sizes != mine:
        raise WeightsError("weights are for layer sizes %r, this actor has %r" % (sizes, mine))
    bits = 64 if code == "d" else 32
    if len(blob) != blob_size(params, bits):
        raise WeightsError("weights blob is %d bytes, expected %d"
                           % (len(blob), blob_size(params, bits)))
    offset = _HEADER_BYTES + 2 * n_sizes
    fmt = "<" + code
    step = bits // 8
    set_ = K.set
    for p in params:
        rows, cols = K.shape(p)
        for i in range(rows):
            for j in range(cols):
                set_(p, i, j, struct.unpack_from(fmt, blob, offset)[0])
                offset += step


def encode_chunk(data):
    """(base64 text, crc32) of one chunk of bytes."""
    if binascii is None:
        return b64encode(data), crc32(data)
    text = binascii.b2a_base64(data)
    if isinstance(text, (bytes, bytearray)):
        text = text.decode()
    return text.strip(), crc32(data)


def decode_chunk(text, expected_crc32):
    """The bytes of a base64 chunk; raises WeightsError when it is not base64 or its CRC differs."""
    try:
        data = binascii.a2b_base64(text) if binascii is not None else b64decode(text)
    except (ValueError, TypeError):
        data = b""
    if not data:  # MicroPython skips characters outside the base64 alphabet instead of failing
        raise WeightsError("chunk is empty or not valid base64")
    if crc32(data) != expected_crc32:
        raise WeightsError("chunk CRC32 mismatch: got %d, expected %r" % (crc32(data), expected_crc32))
    return data


class Upload:
    """A blob arriving chunk by chunk, in order, into one buffer allocated at the first chunk."""

    def __init__(self, total_bytes):
        self.buf = bytearray(total_bytes)
        self.received = 0

    def add(self, offset, text, expected_crc32):
        if offset != self.received:
            raise WeightsError("chunk at offset %r, expected offset %d" % (offset, self.received))
        data = decode_chunk(text, expected_crc32)
        end = offset + len(data)
        if end > len(self.buf):
            raise WeightsError("chunk runs past the announced %d bytes" % len(self.buf))
        self.buf[offset:end] = data
        self.received = end
        return self.received == len(self.buf)


def _open_for_writing(path, name=None):
    """``open(path, "wb")``; WeightsError with the boot.py recipe, naming ``name`` (default
    ``path``), when the flash is read-only."""
    try:
        return open(path, "wb")
    except OSError as e:
        if e.args and e.args[0] == _EROFS:
            raise WeightsError(READ_ONLY_HELP % (name or path)) from None
        raise


def check_writable(path):
    """Raise WeightsError (read-only flash) or OSError now rather than after a long run. It writes
    a probe file beside ``path``, never ``path`` or its .tmp, which may hold the only whole copy."""
    import os
    probe = path + ".probe"
    _open_for_writing(probe, path).close()
    os.remove(probe)


def save(path, params):
    """Write the weights file so that a cut at any instant leaves one whole copy: to ``path``.tmp,
    then renamed over ``path`` (never removing ``path`` first). Where a rename cannot replace a file
    (FAT), ``path`` is rewritten while the .tmp is kept whole, and removed after; ``load`` falls
    back to it."""
    import os
    blob = pack(params)
    tmp = path + ".tmp"
    with _open_for_writing(tmp) as f:
        f.write(blob)
    try:
        os.rename(tmp, path)
    except OSError:  # FAT: the destination exists
        with open(path, "wb") as f:
            f.write(blob)
        os.remove(tmp)
    return len(blob)


def load(path, params):
    """Read the weights file into ``params``; its .tmp when a cut save left ``path`` missing or
    short."""
    try:
        return _load(path, params)
    except (OSError, WeightsError) as e:
        try:
            return _load(path + ".tmp", params)
        except (OSError, WeightsError):
            raise e


def _load(path, params):
    with open(path, "rb") as f:
        blob = f.read()
    unpack_into(params, blob)
    return len(blob)
