"""PCG32 random numbers, the same sequence as the device, drawn in blocks.

The draws are those of docs/ALGORITHM.md, to the bit. The generator computes its outputs
`BLOCK_DRAWS` at a time: the LCG is jumped ahead with `state_k = A_k * state + C_k (mod 2**64)` for
all k at once and the XSH-RR output is vectorised; with them the block's uniforms and, for every
position, the normal whose two uniforms start there. Every draw, scalar or block, then reads the
next outputs of the block, so both kinds consume exactly the numbers the scalar definitions would,
one after the other, and a TD3 update's 300 draws cost a few slices instead of two dozen numpy
calls. With the compiled kernels (fused_steps.py) the block's integer work, its uniforms and the
normals' arithmetic around numpy's log and cos are two calls, with the same numbers.
"""

import math

import numpy as np

from microrl_host.mirror import fused, fused_steps

_MULT = 6364136223846793005
_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1
_TWO_PI = 2.0 * math.pi
_U32_TO_UNIT = 2.0**-24  # uniform(): top 24 bits of a draw, exact in float32 and float64
_U8, _U18, _U27, _U32, _U59 = (np.uint64(k) for k in (8, 18, 27, 32, 59))
BLOCK_DRAWS = 4096  # outputs computed at once
_U_MASK32 = np.uint64(_MASK32)


def _normal_from_uniforms(u1, u2):
    """Box-Muller cosine half, with numpy's log and cos (not always libm's to the last bit): scalar
    and block normals both read these."""
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(_TWO_PI * u2)


class Rng:
    """PCG32 generator (O'Neill's pcg32_random_r), seeded with `seed` on stream `stream`."""

    def __init__(self, seed, stream=0):
        self.inc = ((stream << 1) | 1) & _MASK64
        state = 0
        state = self._advance(state)
        state = (state + seed) & _MASK64
        self._start = self._advance(state)  # the state before the block's first output
        # Jump-ahead tables: state after k steps is A[k] * state + C[k] (mod 2**64).
        self._jump_a = np.ones(1, dtype=np.uint64)
        self._jump_c = np.zeros(1, dtype=np.uint64)
        self._pos = 0  # outputs of the block consumed
        self._len = 0  # outputs in the block
        self._u32 = self._uniform = self._normal = None
        self._fused = fused.active()  # the block's integer work in one compiled pass
        self._buffers = None  # the compiled path's block arrays (u32, uniform, normal, 2 work)

    def _advance(self, state):
        return (state * _MULT + self.inc) & _MASK64

    @property
    def state(self):
        """The PCG32 state after the outputs drawn so far (an int, as in the scalar definition)."""
        if self._pos == 0:
            return self._start
        self._grow_jump_tables(self._pos)
        return (int(self._jump_a[self._pos]) * self._start
                + int(self._jump_c[self._pos])) & _MASK64

    # ---- the block ----------------------------------------------------------------------------

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

    def _take(self, count):
        """Position of the next `count` outputs in the block (computing a new block if needed);
        a normal at the last of them reads one output more."""
        pos = self._pos
        if pos + count + 1 > self._len:
            self._refill(count + 1)
            pos = 0
        self._pos = pos + count
        return pos

    def _refill(self, need):
        """A new block of at least `need` outputs, starting at the current state."""
        start = self.state
        count = max(BLOCK_DRAWS, need)
        self._grow_jump_tables(count)
        if self._fused:
            self._refill_fused(start, count)
            return
        old = self._jump_a[:count] * np.uint64(start)
        old += self._jump_c[:count]
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
        self._u32 = x
        self._uniform = (x >> _U8).astype(np.float64) * _U32_TO_UNIT
        self._normal = _normal_from_uniforms(self._uniform[:-1], self._uniform[1:])
        self._start = start
        self._pos = 0
        self._len = count

    def _refill_fused(self, start, count):
        """_refill's numbers from fused_steps.pcg_block, with numpy's log and cos as in
        _normal_from_uniforms."""
        if self._buffers is None or self._buffers[0].shape[0] != count:
            self._buffers = (np.zeros(count, np.uint64), np.zeros(count), np.zeros(count - 1),
                             np.zeros(count - 1), np.zeros(count - 1))
        u32, uniform, normal, log, cos = self._buffers
        fused_steps.pcg_block(self._jump_a, self._jump_c, np.uint64(start), u32, uniform, log, cos)
        np.log(log, out=log)
        np.cos(cos, out=cos)
        fused_steps.box_muller(log, cos, normal)
        self._u32, self._uniform, self._normal = u32, uniform, normal
        self._start = start
        self._pos = 0
        self._len = count

    # ---- scalar draws -------------------------------------------------------------------------

    def next_u32(self):
        """One PCG32 output, an int in [0, 2**32)."""
        pos = self._take(1)
        return int(self._u32[pos])

    def uniform(self):
        """A float in [0, 1) with 24 random bits: (next_u32() >> 8) * 2**-24."""
        pos = self._take(1)
        return float(self._uniform[pos])

    def normal(self):
        """A standard normal (Box-Muller, cosine half, two uniforms)."""
        pos = self._take(2)
        return float(self._normal[pos])

    def below(self, n):
        """An int in [0, n), `(next_u32() * n) >> 32`."""
        return (self.next_u32() * n) >> 32

    # ---- block draws --------------------------------------------------------------------------

    def u32_array(self, count):
        """`count` outputs of `next_u32()` as a uint64 array."""
        pos = self._take(count)
        return self._u32[pos:pos + count].copy()

    def uniform_array(self, count):
        """`count` draws of `uniform()` as float64 (exact)."""
        pos = self._take(count)
        return self._uniform[pos:pos + count].copy()

    def normal_array(self, count):
        """`count` draws of `normal()` as float64 (2 * count uniforms, u1 then u2 per draw)."""
        pos = self._take(2 * count)
        return self._normal[pos:pos + 2 * count:2].copy()

    def below_array(self, count, n):
        """`count` draws of `below(n)` as an int64 array."""
        if not 0 < n <= _MASK32:
            raise ValueError(f"n must be in [1, 2**32), got {n}")
        pos = self._take(count)
        if self._fused:
            out = np.empty(count, np.int64)
            fused_steps.below(self._u32[pos:pos + count], np.uint64(n), out)
            return out
        u = self._u32[pos:pos + count] * np.uint64(n)
        u >>= _U32
        return u.astype(np.int64)
