"""PCG32 random numbers, the same sequence as the device, with vectorised block draws.

The scalar methods follow docs/ALGORITHM.md to the letter. The block methods (`*_array`) consume
exactly the numbers the scalar methods would, one after the other: the LCG is jumped ahead with
`state_k = A_k * state + C_k (mod 2**64)` for all k at once, and the XSH-RR output is vectorised.
"""

import math

import numpy as np

_MULT = 6364136223846793005
_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1
_TWO_PI = 2.0 * math.pi
_U32_TO_UNIT = 2.0**-24  # uniform(): top 24 bits of a draw, exact in float32 and float64
_U8, _U18, _U27, _U32, _U59 = (np.uint64(k) for k in (8, 18, 27, 32, 59))
_U_MASK32 = np.uint64(_MASK32)


def _normal_from_uniforms(u1, u2):
    """Box-Muller cosine half. numpy's log is not always libm's to the last bit, so the scalar
    and block normals both go through numpy to stay bit-identical with each other."""
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(_TWO_PI * u2)


class Rng:
    """PCG32 generator (O'Neill's pcg32_random_r), seeded with `seed` on stream `stream`."""

    def __init__(self, seed, stream=0):
        self.inc = ((stream << 1) | 1) & _MASK64
        self.state = 0
        self.next_u32()
        self.state = (self.state + seed) & _MASK64
        self.next_u32()
        # Jump-ahead tables: state after k steps is A[k] * state + C[k] (mod 2**64).
        self._jump_a = np.ones(1, dtype=np.uint64)
        self._jump_c = np.zeros(1, dtype=np.uint64)

    # ---- scalar draws -------------------------------------------------------------------------

    def next_u32(self):
        """One PCG32 output, an int in [0, 2**32)."""
        old = self.state
        self.state = (old * _MULT + self.inc) & _MASK64
        xorshifted = (((old >> 18) ^ old) >> 27) & _MASK32
        rot = old >> 59
        return ((xorshifted >> rot) | (xorshifted << ((-rot) & 31))) & _MASK32

    def uniform(self):
        """A float in [0, 1) with 24 random bits."""
        return (self.next_u32() >> 8) * _U32_TO_UNIT

    def normal(self):
        """A standard normal (Box-Muller, cosine half, two uniforms)."""
        u1 = self.uniform()
        u2 = self.uniform()
        return float(_normal_from_uniforms(np.float64(u1), np.float64(u2)))

    def below(self, n):
        """An int in [0, n), `(next_u32() * n) >> 32`."""
        return (self.next_u32() * n) >> 32

    # ---- block draws --------------------------------------------------------------------------

    def _grow_jump_tables(self, count):
        """Extend A[k], C[k] to k = 0 .. count (computed with Python ints, stored as uint64)."""
        have = self._jump_a.shape[0]
        if have > count:
            return
        size = max(count + 1, 2 * have)
        a = [int(self._jump_a[-1])]
        c = [int(self._jump_c[-1])]
        for _ in range(have, size):
            a.append((a[-1] * _MULT) & _MASK64)
            c.append((c[-1] * _MULT + self.inc) & _MASK64)
        self._jump_a = np.concatenate((self._jump_a, np.array(a[1:], dtype=np.uint64)))
        self._jump_c = np.concatenate((self._jump_c, np.array(c[1:], dtype=np.uint64)))

    def u32_array(self, count):
        """`count` outputs of `next_u32()` as a uint64 array, advancing the state past them."""
        self._grow_jump_tables(count)
        state = self.state
        old = self._jump_a[:count] * np.uint64(state)
        old += self._jump_c[:count]
        self.state = (int(self._jump_a[count]) * state + int(self._jump_c[count])) & _MASK64
        # XSH-RR: x = ((old >> 18) ^ old) >> 27 truncated to 32 bits, rotated right by old >> 59;
        # the rotation shifts the 64-bit (x, x) pair and keeps the low 32 bits.
        x = old >> _U18
        x ^= old
        x >>= _U27
        x &= _U_MASK32
        rot = old >> _U59
        x |= x << _U32
        x >>= rot
        x &= _U_MASK32
        return x

    def uniform_array(self, count):
        """`count` draws of `uniform()` as float64 (exact)."""
        u = self.u32_array(count)
        u >>= _U8
        return u.astype(np.float64) * _U32_TO_UNIT

    def normal_array(self, count):
        """`count` draws of `normal()` as float64 (2 * count uniforms, u1 then u2 per draw)."""
        u = self.uniform_array(2 * count)
        return _normal_from_uniforms(u[0::2], u[1::2])

    def below_array(self, count, n):
        """`count` draws of `below(n)` as an int64 array."""
        if not 0 < n <= _MASK32:
            raise ValueError(f"n must be in [1, 2**32), got {n}")
        u = self.u32_array(count)
        u *= np.uint64(n)
        u >>= _U32
        return u.astype(np.int64)
