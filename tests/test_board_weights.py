"""get_weights / set_weights: the actor round-trips bit for bit in float64 and float32 storage, and a
corrupted chunk is rejected with an error reply while the upload can go on."""

import base64
import struct
import zlib

import pytest

from boardkit import deployed_board, link_to
from microrl_host.board.transport import BoardError


@pytest.mark.parametrize("float_bits", [64, 32])
def test_weights_round_trip_bit_for_bit(float_bits):
    with deployed_board(float_bits=float_bits) as board, link_to(board) as link:
        hello = link.hello()
        store_bits = hello["store_bits"]
        if hello["backend"] == "python":  # ulab stores at the firmware's own precision
            assert store_bits == float_bits
        link.train(250, seed=1)
        trained = link.get_weights(chunk_bytes=100)
        magic, version, code, n_sizes, _ = struct.unpack_from("<4sBBBB", trained)
        assert (magic, version, n_sizes) == (b"MRLW", 1, 4)
        assert chr(code) == ("d" if store_bits == 64 else "f")
        sizes = struct.unpack_from("<4H", trained, 8)
        assert sizes == (3, 8, 8, 1)
        count = 3 * 8 + 8 + 8 * 8 + 8 + 8 + 1
        assert len(trained) == 16 + count * store_bits // 8
        before = link.evaluate(episodes=2, seed=4)["mean_return"]

        link.reset(seed=9)
        fresh = link.get_weights()
        assert fresh != trained and len(fresh) == len(trained)
        assert link.evaluate(episodes=2, seed=4)["mean_return"] != before

        reply = link.set_weights(trained, chunk_bytes=128)
        assert reply["applied"] and reply["received"] == len(trained)
        assert link.get_weights(chunk_bytes=333) == trained
        assert link.evaluate(episodes=2, seed=4)["mean_return"] == before


def test_corrupted_chunk_is_rejected_and_the_upload_goes_on():
    with deployed_board() as board, link_to(board) as link:
        blob = bytearray(link.get_weights())
        blob[100:104] = struct.pack("<f", 0.25)  # a changed weight, whatever the precision
        half = len(blob) // 2
        first, rest = bytes(blob[:half]), bytes(blob[half:])
        total = len(blob)

        def send(offset, data, crc):
            return link.request("set_weights", offset=offset, bytes=total,
                                data=base64.b64encode(data).decode(), crc32=crc)
        assert send(0, first, zlib.crc32(first)) == {
            "v": 1, "id": link._next_id - 1, "ok": True, "received": half, "bytes": total,
            "applied": False}
        flipped = bytearray(rest)
        flipped[10] ^= 0x40
        with pytest.raises(BoardError, match="CRC32 mismatch"):
            send(half, bytes(flipped), zlib.crc32(rest))
        with pytest.raises(BoardError, match="not valid base64"):
            link.request("set_weights", offset=half, bytes=total, data="@@@@", crc32=0)
        with pytest.raises(BoardError, match="expected offset %d" % half):
            send(half + 8, rest[8:], zlib.crc32(rest[8:]))
        reply = send(half, rest, zlib.crc32(rest))
        assert reply["applied"] and reply["received"] == total
        assert link.get_weights() == bytes(blob)

        wrong_shape = bytearray(blob)
        struct.pack_into("<H", wrong_shape, 10, 9)
        with pytest.raises(BoardError, match="layer sizes"):
            link.set_weights(bytes(wrong_shape))
        assert link.get_weights() == bytes(blob)
