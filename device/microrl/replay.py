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
    """Preallocated minibatch matrices. ``sa`` and ``next_sa`` are the critics' [obs, action] inputs."""

    def __init__(self, max_batch):
        self.obs = K.matrix(max_batch, OBS_DIM)
        self.sa = K.matrix(max_batch, OBS_DIM + ACT_DIM)
        self.reward = K.matrix(max_batch, 1)
        self.done = K.matrix(max_batch, 1)
        self.next_obs = K.matrix(max_batch, OBS_DIM)
        self.next_sa = K.matrix(max_batch, OBS_DIM + ACT_DIM)


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
        set_ = K.set
        d = self._chunks[k // _CHUNK_ROWS]
        base = (k % _CHUNK_ROWS) * _ROW
        for j in range(OBS_DIM):
            v = d[base + j]
            set_(batch.obs, i, j, v)
            set_(batch.sa, i, j, v)
            v = d[base + OBS_DIM + ACT_DIM + 1 + j]
            set_(batch.next_obs, i, j, v)
            set_(batch.next_sa, i, j, v)
        set_(batch.sa, i, OBS_DIM, d[base + OBS_DIM])
        set_(batch.reward, i, 0, d[base + OBS_DIM + ACT_DIM])
        set_(batch.done, i, 0, d[base + _ROW - 1])

    def sample(self, rng, n, batch):
        """Fill the first n rows of ``batch`` with rows drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        for i in range(n):
            self.decode(self.draw(rng), batch, i)
