"""Replay buffer: fixed capacity, preallocated, ring overwrite, uniform sampling.

A row is obs (obs_dim), action (act_dim), reward, next_obs (obs_dim), done, stored as float32 (4
bytes per field on every port) in ``array('f')`` chunks of at most ``_CHUNK_BYTES``, so that no
single large block is needed on a fragmented heap, and copied into the learner's preallocated
``Batch`` (batch.py) when sampled, without fancy indexing.
"""

from .backend import const, zeros

_CHUNK_BYTES = const(4032)  # one small block per chunk (112 pendulum rows)


class ReplayBuffer:
    """``ReplayBuffer(capacity, env)``: rows for ``env``'s ``obs_dim`` and ``act_dim``."""

    def __init__(self, capacity, env):
        if not isinstance(capacity, int) or capacity <= 0:
            raise ValueError("capacity must be a positive integer, got %r" % (capacity,))
        self.capacity = capacity
        self.size = 0
        self._next = 0
        od, ad = env.obs_dim, env.act_dim
        self._od, self._ad = od, ad
        self._row = row = 2 * od + ad + 2
        self._chunk_rows = per = max(1, _CHUNK_BYTES // (4 * row))
        source = bytes(4 * row * per)
        self._chunks = [zeros("f", row * min(per, capacity - start), source)
                        for start in range(0, capacity, per)]

    def add(self, obs, action, reward, next_obs, done, episode_end=False):
        """Store one transition; returns its slot (``episode_end`` is for the compressed layout)."""
        slot = self._next
        od, ad, per = self._od, self._ad, self._chunk_rows
        d = self._chunks[slot // per]
        base = (slot % per) * self._row
        nb = base + od + ad + 1
        for j in range(od):
            d[base + j] = obs[j]
            d[nb + j] = next_obs[j]
        for j in range(ad):
            d[base + od + j] = action[j]
        d[base + od + ad] = reward
        d[nb + od] = done
        self._next = (slot + 1) % self.capacity
        if self.size < self.capacity:
            self.size += 1
        return slot

    def cut(self):
        """The episode in progress ends here untold: nothing to do, every row holds its successor."""

    def clear(self):
        """Forget every stored step (the divergence guard's restore without the buffer)."""
        self.size = self._next = 0

    def sampleable(self, slot):
        return slot < self.size

    def draw(self, rng):
        """A uniformly drawn row index."""
        return rng.below(self.size)

    def decode(self, k, batch, i):
        """Copy row k into row i of ``batch``."""
        od, ad, per = self._od, self._ad, self._chunk_rows
        d = self._chunks[k // per]
        base = (k % per) * self._row
        nb = base + od + ad + 1
        o = i * od
        sa = i * (od + ad)
        obs, bsa, nxt, nsa = batch.obs_d, batch.sa_d, batch.next_obs_d, batch.next_sa_d
        for j in range(od):
            v = d[base + j]
            obs[o + j] = v
            bsa[sa + j] = v
            v = d[nb + j]
            nxt[o + j] = v
            nsa[sa + j] = v
        for j in range(ad):
            bsa[sa + od + j] = d[base + od + j]
        batch.reward_d[i] = d[base + od + ad]
        batch.done_d[i] = d[nb + od]

    def sample(self, rng, n, batch):
        """Fill the first n rows of ``batch`` with rows drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        for i in range(n):
            self.decode(self.draw(rng), batch, i)
