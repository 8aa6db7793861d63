"""Compressed replay: the pendulum's transitions in 10 bytes each, decoded into the float batch.

After replay compression by differentially encoded observations: a slot holds one environment
step as five int16 codes, the observation the action was taken in (cos, sin, angular velocity),
the normalised action, and the reward with two flags. The next observation is not stored: inside
an episode it is the observation of the next slot. Flag bits:

- start (0x4000 of the reward word): the slot begins an episode. The slot before it (the last step
  of a truncated episode) has no next observation stored and is never sampled.
- terminal (0x8000): the step ended the episode (done = 1); its next observation is not used.

Codes use fixed scales: cos and sin in [-1, 1] and the action in [-1, 1] (torque in [-2, 2] N m)
step by 1/32767, the angular velocity in [-8, 8] rad/s by 8/32767, the reward in [-16.3, 0] by
16.3/16383 in the word's 14 low bits. Encoding rounds half to even, so decoding is within half a
step of the stored value. A float32 row of the same transition takes 36 bytes.

Storage is ``array('h')`` chunks of ``_CHUNK_ROWS`` slots (every backend, no large single block).
Sampling draws ``rng.below(size)`` per row until the slot has a next observation (rejection, in row
order) and writes the decoded values straight into the learner's preallocated ``Batch``.
"""

from .backend import const, zeros
from .pendulum import OBS_DIM

_WORDS = const(5)  # cos, sin, thdot, action, reward and flags
_CHUNK_ROWS = const(1000)  # 10 000 bytes per chunk
_START = const(0x4000)
_TERMINAL = const(0x8000)
_REWARD_BITS = const(0x3FFF)
_FULL = const(32767)

# Decode scales and encode factors, per observation field then action and reward.
OBS_RANGE = (1.0, 1.0, 8.0)
REWARD_MIN = -16.3
OBS_STEP = tuple(r / 32767.0 for r in OBS_RANGE)
ACTION_STEP = 1.0 / 32767.0
REWARD_STEP = -REWARD_MIN / 16383.0
_OBS_INV = tuple(32767.0 / r for r in OBS_RANGE)
_ACTION_INV = 32767.0
_REWARD_INV = 16383.0 / -REWARD_MIN


def _code(x, inv, limit):
    q = round(x * inv)
    return -limit if q < -limit else (limit if q > limit else q)


class CompressedReplay:
    """``CompressedReplay(capacity)``: ``capacity`` slots of 10 bytes, one per environment step."""

    def __init__(self, capacity):
        if not isinstance(capacity, int) or capacity <= 1:
            raise ValueError("capacity must be an integer >= 2, got %r" % (capacity,))
        self.capacity = capacity
        self.size = 0
        self._next = 0
        self._fresh = True  # the next add starts an episode
        source = bytes(2 * _WORDS * min(_CHUNK_ROWS, capacity))  # one zero block to copy
        self._chunks = [zeros("h", _WORDS * min(_CHUNK_ROWS, capacity - start), source)
                        for start in range(0, capacity, _CHUNK_ROWS)]

    def add(self, obs, action, reward, next_obs, done, episode_end=False):
        """Store one step and return its slot; ``next_obs`` is the next slot's observation.

        ``episode_end``: this step truncates the episode (the next add starts a new one).
        """
        slot = self._next
        d = self._chunks[slot // _CHUNK_ROWS]
        base = (slot % _CHUNK_ROWS) * _WORDS
        for j in range(OBS_DIM):
            d[base + j] = _code(obs[j], _OBS_INV[j], _FULL)
        d[base + OBS_DIM] = _code(action, _ACTION_INV, _FULL)
        word = round(-reward * _REWARD_INV)
        word = 0 if word < 0 else (_REWARD_BITS if word > _REWARD_BITS else word)
        if self._fresh:
            word |= _START
        if done:
            word |= _TERMINAL
        d[base + 4] = word - 65536 if word & _TERMINAL else word
        self._fresh = bool(done) or episode_end
        self._next = (slot + 1) % self.capacity
        if self.size < self.capacity:
            self.size += 1
        return slot

    def _word(self, slot):
        return self._chunks[slot // _CHUNK_ROWS][(slot % _CHUNK_ROWS) * _WORDS + 4] & 0xFFFF

    def sampleable(self, slot):
        """True when ``slot`` holds a whole transition: its next observation is stored."""
        if slot == (self._next - 1) % self.capacity or slot >= self.size:
            return False  # the newest step's next observation is not written yet
        if self._word(slot) & _TERMINAL:
            return True
        return not self._word((slot + 1) % self.capacity) & _START

    def decode(self, slot, batch, i):
        """Write slot's transition, dequantized, into row ``i`` of ``batch``."""
        chunks = self._chunks
        d = chunks[slot // _CHUNK_ROWS]
        base = (slot % _CHUNK_ROWS) * _WORDS
        nxt = (slot + 1) % self.capacity
        dn = chunks[nxt // _CHUNK_ROWS]
        nbase = (nxt % _CHUNK_ROWS) * _WORDS
        o = i * OBS_DIM
        sa = i * (OBS_DIM + 1)
        obs, bsa, nxt, nsa = batch.obs_d, batch.sa_d, batch.next_obs_d, batch.next_sa_d
        for j in range(OBS_DIM):
            v = d[base + j] * OBS_STEP[j]
            obs[o + j] = v
            bsa[sa + j] = v
            v = dn[nbase + j] * OBS_STEP[j]
            nxt[o + j] = v
            nsa[sa + j] = v
        bsa[sa + OBS_DIM] = d[base + OBS_DIM] * ACTION_STEP
        word = d[base + 4] & 0xFFFF
        batch.reward_d[i] = -(word & _REWARD_BITS) * REWARD_STEP
        batch.done_d[i] = 1.0 if word & _TERMINAL else 0.0

    def draw(self, rng):
        """A uniformly drawn sampleable slot: ``rng.below(size)`` until one is."""
        size = self.size
        for _ in range(64 * size):
            slot = rng.below(size)
            if self.sampleable(slot):
                return slot
        raise ValueError("no sampleable transition among %d slots" % size)

    def sample(self, rng, n, batch):
        """Fill the first n rows of ``batch`` with transitions drawn uniformly with replacement."""
        if self.size < 2:
            raise ValueError("cannot sample: the buffer holds %d steps" % self.size)
        for i in range(n):
            self.decode(self.draw(rng), batch, i)
