"""The learner's files as the host reads them: the weights blob (``actor.bin``, the payload of
``get_weights``; device/microrl/weights.py) and a checkpoint slot (``ckpt0.bin``, ``ckpt1.bin``;
device/microrl/checkpoint.py, docs/CHECKPOINTS.md). Each check says what is wrong in one line."""

import struct
import zlib

import numpy as np

WEIGHTS_MAGIC = b"MRLW"
CHECKPOINT_MAGIC = b"MRLC"
_WEIGHTS_HEADER = "<4sBBBB"
_WEIGHTS_HEADER_BYTES = 8
_CHECKPOINT_HEADER = "<4sBBBBIIII"
_CHECKPOINT_HEADER_BYTES = 24
_COUNTERS = "<2I"  # the first two counters of the payload: steps, episodes


class FormatError(ValueError):
    """Bytes that are not the file they should be; the message says why."""


def parse_weights(data):
    """(sizes, [W1 (in, out), b1 (out,), ...] as float64 arrays, float bytes 4 or 8) of a
    weights blob."""
    if len(data) < _WEIGHTS_HEADER_BYTES or data[:4] != WEIGHTS_MAGIC:
        raise FormatError("not a microrl weights blob (it does not start with %r)"
                          % WEIGHTS_MAGIC)
    _, version, code, n_sizes, _ = struct.unpack_from(_WEIGHTS_HEADER, data, 0)
    if version != 1:
        raise FormatError("weights blob format version %d, this tool reads 1" % version)
    if chr(code) not in "fd":
        raise FormatError("weights blob typecode %r, expected 'f' or 'd'" % chr(code))
    if n_sizes < 2:
        raise FormatError("weights blob holds %d layer sizes, at least 2 needed" % n_sizes)
    offset = _WEIGHTS_HEADER_BYTES + 2 * n_sizes
    if len(data) < offset:
        raise FormatError("weights blob of %d bytes is cut short in its layer sizes" % len(data))
    sizes = struct.unpack_from("<%dH" % n_sizes, data, _WEIGHTS_HEADER_BYTES)
    dtype = np.dtype("<f4" if chr(code) == "f" else "<f8")
    counts = [n * m + m for n, m in zip(sizes[:-1], sizes[1:])]
    expected = offset + sum(counts) * dtype.itemsize
    if len(data) != expected:
        raise FormatError("weights blob of %d bytes, layer sizes %s need %d"
                          % (len(data), "x".join(map(str, sizes)), expected))
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        for shape in ((n_in, n_out), (n_out,)):
            count = int(np.prod(shape))
            params.append(np.frombuffer(data, dtype, count, offset).astype(np.float64)
                          .reshape(shape))
            offset += count * dtype.itemsize
    return tuple(sizes), params, dtype.itemsize


CHECKPOINT_VERSION = 2  # device/microrl/checkpoint.py's FORMAT_VERSION


def check_checkpoint(data):
    """{"seq", "replay", "float_bytes", "payload_bytes", "steps", "episodes"} of a whole
    checkpoint slot; FormatError saying why it would not load (as the board's own check)."""
    if len(data) < _CHECKPOINT_HEADER_BYTES:
        raise FormatError("shorter than a checkpoint header (%d bytes)" % len(data))
    magic, version, flags, float_bytes, _, seq, length, crc, _ = struct.unpack_from(
        _CHECKPOINT_HEADER, data, 0)
    if magic != CHECKPOINT_MAGIC:
        raise FormatError("no checkpoint magic (a write was cut)" if magic == b"\0\0\0\0"
                          else "not a checkpoint (magic %r)" % (magic,))
    if version != CHECKPOINT_VERSION:
        raise FormatError("checkpoint format version %d, this tool reads %d"
                          % (version, CHECKPOINT_VERSION))
    payload = data[_CHECKPOINT_HEADER_BYTES:]
    if len(payload) != length or length < struct.calcsize(_COUNTERS):
        raise FormatError("payload of %d bytes, the header says %d" % (len(payload), length))
    if zlib.crc32(payload) != crc:
        raise FormatError("payload CRC32 mismatch (%d, header says %d)"
                          % (zlib.crc32(payload), crc))
    steps, episodes = struct.unpack_from(_COUNTERS, payload, 0)
    return {"seq": seq, "replay": bool(flags & 1), "float_bytes": float_bytes,
            "payload_bytes": length, "steps": steps, "episodes": episodes}
