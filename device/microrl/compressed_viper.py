"""Compressed replay's decode in viper: the codes of every drawn row become floats in the batch in
one machine-code call, and a few array operations dequantize them.

``CompressedReplay.decode`` makes a float object of every code, multiplies it by its step and
stores it: 18 k instructions a row on a Cortex-M7 and 27 k on a Cortex-M0. Here ``sample`` draws
the rows as before (the same ``draw``, the same numbers), then ``_codes`` writes each code as the
float it is into the batch (an integer below 2**16 is exact in any float: its bits are built from
the integer, nothing is allocated), and ``K.affine`` multiplies each matrix by its column steps
and adds the centres: the products ``decode`` takes, bit for bit (the reward as its code times
minus the step plus the top of the range, which is ``high - code step`` exactly).

``compressed`` uses this class wherever the firmware compiles viper and ``K.affine`` works on
arrays: on the ulab backend, and on the viper backend where kernels_asm computes it (an ARM core
with single-precision storage). It works on any backend (the tests run it on the viper one of the
desktop), but where ``affine`` is a Python loop it costs more than the decode it saves. No literal
reaches 2**30 (on a 32-bit port viper would load a larger one as an object): the sign bit is made
at run time.
"""

from array import array

import micropython

from .backend import K, STORE_BITS
from .compressed import ACTION_STEP, CompressedReplay as _PyReplay


@micropython.viper
def _codes(g: ptr32, slots: ptr32, chunks, dst):
    """g: rows, slots per chunk, words per slot, obs_dim, act_dim, capacity, 1 for 'd' storage.
    dst: the batch's flat arrays obs, sa, next_obs, next_sa, reward, done. Row i gets slot
    slots[i]'s codes as floats: observation codes in obs and sa, the next slot's in next_obs and
    next_sa, action codes after the observation in sa, the reward's 14-bit code, done as 0 or 1."""
    n = int(g[0])
    per = int(g[1])
    w = int(g[2])
    od = int(g[3])
    ad = int(g[4])
    cap = int(g[5])
    wide = int(g[6])
    sign = 1
    sign <<= 31  # at run time: a folded 1 << 31 is a big-integer constant
    one = (1023 << 20) if wide else (127 << 23)  # the (high) word of 1.0
    p_obs = ptr32(dst[0])
    p_sa = ptr32(dst[1])
    p_nobs = ptr32(dst[2])
    p_nsa = ptr32(dst[3])
    p_rew = ptr32(dst[4])
    p_done = ptr32(dst[5])
    sao = od + ad
    for i in range(n):
        slot = int(slots[i])
        d = ptr16(chunks[slot // per])
        base = (slot % per) * w
        nx = slot + 1
        if nx >= cap:
            nx = 0
        dn = ptr16(chunks[nx // per])
        nbase = (nx % per) * w
        word = int(d[base + w - 1])
        p_done[(2 * i + 1) if wide else i] = one if word & 0x8000 else 0
        if wide:
            p_done[2 * i] = 0
        # parts: the observation (into obs and sa), the next one (next_obs and next_sa), the
        # action (sa after the observation), the reward's code
        for part in range(4):
            src = d
            first = base
            count = od
            p1 = p_obs
            i1 = i * od
            p2 = p_sa
            i2 = i * sao
            two = 1
            mask = 0xFFFF
            if part == 1:
                src = dn
                first = nbase
                p1 = p_nobs
                p2 = p_nsa
            elif part == 2:
                first = base + od
                count = ad
                p1 = p_sa
                i1 = i * sao + od
                two = 0
            elif part == 3:
                first = base + w - 1
                count = 1
                p1 = p_rew
                i1 = i
                two = 0
                mask = 0x3FFF
            for j in range(count):
                c = int(src[first + j]) & mask
                if c & 0x8000:
                    c -= 0x10000  # an int16 code: ptr16 reads it unsigned
                # the float bits of c (|c| < 2**16, exact): a single, or the high word of a double
                hi = 0
                if c != 0:
                    neg = 0
                    if c < 0:
                        neg = 1
                        c = 0 - c
                    e = 0  # the top bit's place, by halves
                    if c >= 256:
                        e = 8
                    if (c >> e) >= 16:
                        e += 4
                    if (c >> e) >= 4:
                        e += 2
                    if (c >> e) >= 2:
                        e += 1
                    if wide:
                        hi = ((1023 + e) << 20) | ((c - (1 << e)) << (20 - e))
                    else:
                        hi = ((127 + e) << 23) | ((c - (1 << e)) << (23 - e))
                    if neg:
                        hi |= sign
                if wide:
                    p1[2 * (i1 + j)] = 0
                    p1[2 * (i1 + j) + 1] = hi
                    if two:
                        p2[2 * (i2 + j)] = 0
                        p2[2 * (i2 + j) + 1] = hi
                else:
                    p1[i1 + j] = hi
                    if two:
                        p2[i2 + j] = hi


class CompressedReplay(_PyReplay):
    """``compressed.CompressedReplay`` whose ``sample`` decodes in viper (same arguments, same
    batch, bit for bit)."""

    def __init__(self, capacity, env):
        super().__init__(capacity, env)
        od, ad = self._od, self._ad
        centre = self._centre
        self._g = array("i", [0, self._chunk_rows, self._words, od, ad, capacity,
                              1 if STORE_BITS == 64 else 0])
        self._slots = None  # an array of rows slots, at the first sample
        self._batch = self._dst = None  # the batch sampled into and its flat arrays, for _codes
        self._obs_step = K.row(self.obs_step)
        self._sa_step = K.row(self.obs_step + (ACTION_STEP,) * ad)
        self._obs_centre = None if centre is None else K.row(centre)
        self._sa_centre = None if centre is None else K.row(centre + (0.0,) * ad)
        self._reward_step = K.row((-self.reward_step,))
        self._reward_top = K.row((self._reward_high,))

    def sample(self, rng, n, batch):
        """Fill the first n rows of ``batch`` with transitions drawn uniformly with replacement."""
        if self.size < 2:
            raise ValueError("cannot sample: the buffer holds %d steps" % self.size)
        slots = self._slots
        if slots is None or len(slots) < n:
            slots = self._slots = array("i", range(n))
        for i in range(n):
            slots[i] = self.draw(rng)
        if batch is not self._batch:  # the learner samples into one batch: a tuple once
            self._batch = batch
            self._dst = (batch.obs_d, batch.sa_d, batch.next_obs_d, batch.next_sa_d,
                         batch.reward_d, batch.done_d)
        g = self._g
        g[0] = n
        _codes(g, slots, self._chunks, self._dst)
        K.affine(batch.obs, self._obs_step, self._obs_centre, n)
        K.affine(batch.next_obs, self._obs_step, self._obs_centre, n)
        K.affine(batch.sa, self._sa_step, self._sa_centre, n)
        # next_sa's actions are scaled too: target smoothing overwrites them before they are read
        K.affine(batch.next_sa, self._sa_step, self._sa_centre, n)
        K.affine(batch.reward, self._reward_step, self._reward_top, n)
