"""Replay buffer: fixed capacity, preallocated, ring overwrite, uniform sampling.

Rows are stored as float32 (4 bytes per field on every port) in ``array('f')`` chunks of
``_CHUNK_ROWS`` rows, so that no single large block is needed on a fragmented heap, and copied into the
learner's preallocated batch matrices when sampled, without fancy indexing.
"""

from .backend import K, const, zeros
from .pendulum import ACT_DIM, OBS_DIM

_ROW = const(9)  # obs (3), action (1), reward (1), next_obs (3), done (1)
_CHUNK_ROWS = const(112)  # 4032 bytes: one small block each


class Batch:
    """Preallocated minibatch matrices. ``sa`` and ``next_sa`` are the critics' [obs, action] inputs.

    Each matrix ``x`` has a flat array ``x_d`` of its elements that writes through to it: replay
    buffers fill rows element by element there (on ulab a per-element ndarray write boxes a float
    and allocates hundreds of bytes; an array store allocates nothing)."""

    def __init__(self, max_batch):
        self.obs, self.obs_d = K.staged(max_batch, OBS_DIM)
        self.sa, self.sa_d = K.staged(max_batch, OBS_DIM + ACT_DIM)
        self.reward, self.reward_d = K.staged(max_batch, 1)
        self.done, self.done_d = K.staged(max_batch, 1)
        self.next_obs, self.next_obs_d = K.staged(max_batch, OBS_DIM)
        self.next_sa, self.next_sa_d = K.staged(max_batch, OBS_DIM + ACT_DIM)


class ReplayBuffer:
    def __init__(self, capacity):
        if not isinstance(capacity, int) or capacity <= 0:
            raise ValueError("capacity must be a positive integer, got %r" % (capacity,))
        self.capacity = capacity
        self.size = 0
        self._next = 0
        source = bytes(4 * _ROW * _CHUNK_ROWS)
        self._chunks = [zeros("f", _ROW * min(_CHUNK_ROWS, capacity - start), source)
                        for start in range(0, capacity, _CHUNK_ROWS)]

    def add(self, obs, action, reward, next_obs, done, episode_end=False):
        """Store one transition; returns its slot (``episode_end`` is for the compressed layout)."""
        slot = self._next
        d = self._chunks[slot // _CHUNK_ROWS]
        base = (slot % _CHUNK_ROWS) * _ROW
        for j in range(OBS_DIM):
            d[base + j] = obs[j]
            d[base + OBS_DIM + ACT_DIM + 1 + j] = next_obs[j]
        d[base + OBS_DIM] = action
        d[base + OBS_DIM + ACT_DIM] = reward
        d[base + _ROW - 1] = done
        self._next = (slot + 1) % self.capacity
        if self.size < self.capacity:
            self.size += 1
        return slot

    def sampleable(self, slot):
        return slot < self.size

    def draw(self, rng):
        """A uniformly drawn row index."""
        return rng.below(self.size)

    def decode(self, k, batch, i):
        """Copy row k into row i of ``batch``."""
        d = self._chunks[k // _CHUNK_ROWS]
        base = (k % _CHUNK_ROWS) * _ROW
        o = i * OBS_DIM
        sa = i * (OBS_DIM + ACT_DIM)
        obs, bsa, nxt, nsa = batch.obs_d, batch.sa_d, batch.next_obs_d, batch.next_sa_d
        for j in range(OBS_DIM):
            v = d[base + j]
            obs[o + j] = v
            bsa[sa + j] = v
            v = d[base + OBS_DIM + ACT_DIM + 1 + j]
            nxt[o + j] = v
            nsa[sa + j] = v
        bsa[sa + OBS_DIM] = d[base + OBS_DIM]
        batch.reward_d[i] = d[base + OBS_DIM + ACT_DIM]
        batch.done_d[i] = d[base + _ROW - 1]

    def sample(self, rng, n, batch):
        """Fill the first n rows of ``batch`` with rows drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        for i in range(n):
            self.decode(self.draw(rng), batch, i)
