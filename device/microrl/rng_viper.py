"""PCG32 in viper: the numbers of ``rng.Rng``, each draw one machine-code call.

The integer-only generator computes its 64-bit state in big integers, which a 32-bit board
allocates and multiplies in software: about 9 k instructions a draw on a Cortex-M7 and 12 k on a
Cortex-M0. Here the state is 32-bit words of an ``array`` and the 64-bit product is taken in 16-bit
limbs, so every intermediate fits a 32-bit word and a draw allocates nothing. ``rng`` uses this
``Rng`` wherever the firmware compiles viper and the backend is not the pure-Python one with its
plain loops; the numbers are the same bit for bit (tests/test_rng_viper.py).

Words read with ``ptr32`` are unsigned on a 64-bit port and the 32-bit word on a board: values
are ``uint`` and masked to 32 bits where a 64-bit register would keep more. No literal reaches
2**30 (on a 32-bit port viper would load a larger one as an object): the multiplier and the
mask are words of the array.
"""

from array import array

import micropython

from .rng import _INV_2_24, Rng as _IntRng

# the words of a fresh state: rng's multiplier (low, high) and the mask follow the state's four
_WORDS = (0, 0, 0, 0, 0x4C957F2D, 0x5851F42D, 0xFFFFFFFF)


@micropython.viper
def draw(w: ptr32, n: uint) -> uint:
    """w: state low, high, increment low, high, multiplier low, high, 2**32 - 1. Advance the
    state; return the old state's 32-bit output x, or (x n) >> 32 when n > 0."""
    mask = uint(w[6])
    sl = uint(w[0])
    sh = uint(w[1])
    # XSH-RR output of the old state: rotr32(((old ^ (old >> 18)) >> 27) mod 2**32, old >> 59)
    xl = sl ^ (((sl >> 18) | (sh << 14)) & mask)
    xh = sh ^ (sh >> 18)
    xs = ((xl >> 27) | (xh << 5)) & mask
    rot = sh >> 27
    x = ((xs >> rot) | (xs << ((32 - rot) & 31))) & mask
    # state = state * multiplier + increment (mod 2**64): the low words' full product in limbs
    ml = uint(w[4])
    a0 = sl & 0xFFFF
    a1 = sl >> 16
    b0 = ml & 0xFFFF
    b1 = ml >> 16
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    mid = (p00 >> 16) + (p01 & 0xFFFF) + (p10 & 0xFFFF)
    lo = (p00 & 0xFFFF) | ((mid & 0xFFFF) << 16)
    hi = a1 * b1 + (p01 >> 16) + (p10 >> 16) + (mid >> 16) + sh * ml + sl * uint(w[5])
    il = uint(w[2])
    s0 = (lo & 0xFFFF) + (il & 0xFFFF)
    s1 = (lo >> 16) + (il >> 16) + (s0 >> 16)
    w[0] = (s0 & 0xFFFF) | ((s1 & 0xFFFF) << 16)
    w[1] = (hi + uint(w[3]) + (s1 >> 16)) & mask
    if n == uint(0):
        return x
    # the high word of x n, in limbs as above (written out again: viper has no inlining, and a
    # call would cost more than the arithmetic)
    a0 = x & 0xFFFF
    a1 = x >> 16
    b0 = n & 0xFFFF
    b1 = n >> 16
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    mid = (p00 >> 16) + (p01 & 0xFFFF) + (p10 & 0xFFFF)
    return (a1 * b1 + (p01 >> 16) + (p10 >> 16) + (mid >> 16)) & mask


class Rng(_IntRng):
    """``rng.Rng`` on machine words: the same seeding, draws and ``_state``/``_inc`` (which a
    checkpoint reads and writes)."""

    def __init__(self, seed, stream=0):
        self._w = array("I", _WORDS)
        _IntRng.__init__(self, seed, stream)

    @property
    def _state(self):
        return self._w[0] | (self._w[1] << 32)

    @_state.setter
    def _state(self, value):
        self._w[0] = value & 0xFFFFFFFF
        self._w[1] = value >> 32

    @property
    def _inc(self):
        return self._w[2] | (self._w[3] << 32)

    @_inc.setter
    def _inc(self, value):
        self._w[2] = value & 0xFFFFFFFF
        self._w[3] = value >> 32

    def next_u32(self):
        return draw(self._w, 0)

    def uniform(self):
        return draw(self._w, 16777216) * _INV_2_24  # (x 2**24) >> 32 is x >> 8

    def below(self, n):
        return draw(self._w, n)
