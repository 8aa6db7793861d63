"""PCG32 random numbers in integer-only Python: the same sequence on CPython and every MicroPython.

One generator is seeded at the entry point and passed to every operation that draws (weight init,
exploration and target-smoothing noise, minibatch indices, environment resets). See
docs/ALGORITHM.md for the exact definitions the host mirror shares.
"""

from math import cos, log, sqrt
from .backend import const

_MULT = const(6364136223846793005)
_MASK64 = const(0xFFFFFFFFFFFFFFFF)
_MASK32 = const(0xFFFFFFFF)
_TWO_PI = 6.283185307179586
_INV_2_24 = 1.0 / 16777216.0


class Rng:
    """PCG32 (XSH-RR) with a seed and a stream number."""

    def __init__(self, seed, stream=0):
        if seed < 0 or stream < 0:
            raise ValueError("seed and stream must be >= 0, got %r, %r" % (seed, stream))
        self._inc = ((stream << 1) | 1) & _MASK64
        self._state = 0
        self.next_u32()
        self._state = (self._state + seed) & _MASK64
        self.next_u32()

    def next_u32(self):
        old = self._state
        self._state = (old * _MULT + self._inc) & _MASK64
        xorshifted = (((old >> 18) ^ old) >> 27) & _MASK32
        rot = old >> 59
        return ((xorshifted >> rot) | (xorshifted << ((32 - rot) & 31))) & _MASK32

    def uniform(self):
        """A float in [0, 1) with 24 random bits: exact in single and double precision."""
        return (self.next_u32() >> 8) * _INV_2_24

    def normal(self):
        """A standard normal by Box-Muller from two uniforms (the sine half is dropped)."""
        u1 = self.uniform()
        u2 = self.uniform()
        return sqrt(-2.0 * log(1.0 - u1)) * cos(_TWO_PI * u2)

    def below(self, n):
        """An integer in [0, n) by multiply-shift."""
        return (self.next_u32() * n) >> 32


def _machine_words():
    """rng_viper's Rng (the same numbers from machine words) where the firmware compiles viper,
    unless the backend is the pure-Python one with its plain loops, which stands for firmware
    without an emitter (with kernels_pyasm's routines it runs on stock ARM firmware)."""
    from .backend import NAME, PRODUCTS
    if NAME == "numpy" or PRODUCTS == "python":
        return None
    try:
        from .rng_viper import Rng as fast
    except (ImportError, SyntaxError, ValueError):  # no emitter, or native code for another core
        return None
    return fast


Rng = _machine_words() or Rng
