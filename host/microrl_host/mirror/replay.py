"""Replay buffer: a float32 ring of transitions, sampled uniformly with replacement.

A row is `[obs (obs_dim), action (act_dim), reward, next_obs (obs_dim), done]`, rounded to float32 on
`add` as on the device. `sample` gathers rows with one fancy-indexing call into a preallocated batch
table of the learner dtype and returns column views of it (with the compiled kernels,
fused_steps.py, one call that gathers and converts).
"""

import numpy as np

from microrl_host.mirror import fused, fused_steps


class ReplayBuffer:
    """`ReplayBuffer(capacity, obs_dim=3, act_dim=1, dtype=float64)`; `size` rows are stored."""

    def __init__(self, capacity, obs_dim=3, act_dim=1, dtype=np.float64):
        if not isinstance(capacity, int) or capacity <= 0:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.dtype = np.dtype(dtype)
        self.size = 0
        self._next = 0  # ring position of the next add
        width = 2 * obs_dim + act_dim + 2
        self._table = np.zeros((capacity, width), np.float32)
        # Column slices of a row.
        a0 = obs_dim
        r0 = a0 + act_dim
        n0 = r0 + 1
        d0 = n0 + obs_dim
        self._cols = (slice(0, a0), slice(a0, r0), slice(r0, n0), slice(n0, d0), slice(d0, d0 + 1))
        self._obs_action_cols = slice(0, r0)
        self._rows32 = np.zeros((0, width), np.float32)
        self._rows = np.zeros((0, width), self.dtype)
        self._plans = {}  # batch -> (rows32 or None, rows, obs_action, column views)
        self._fused = fused.active()  # gather and convert in one compiled pass

    def add(self, obs, action, reward, next_obs, done, episode_end=False):
        """Store one transition, overwriting the oldest once full (`episode_end` is not needed)."""
        slot = self._next
        row = self._table[slot]
        c_obs, c_act, c_rew, c_next, c_done = self._cols
        row[c_obs] = obs
        row[c_act] = action
        row[c_rew] = reward
        row[c_next] = next_obs
        row[c_done] = done
        self._next = (slot + 1) % self.capacity
        if self.size < self.capacity:
            self.size += 1
        return slot

    def sample(self, rng, batch):
        """Draw `batch` rows with replacement (`rng.below(size)` per row, in order).

        Returns views `(obs, action, reward, next_obs, done)` into a batch table of the learner
        dtype that the next `sample` overwrites; `self.obs_action` views its obs and action
        columns together (the critic input)."""
        if not isinstance(batch, int) or batch <= 0 or batch > self.capacity:
            raise ValueError(f"batch must be in [1, capacity={self.capacity}], got {batch!r}")
        if self.size == 0:
            raise ValueError(f"cannot sample a batch of {batch} from an empty buffer")
        return self.decode(rng.below_array(batch, self.size))

    def sampleable(self, slot):
        return slot < self.size

    def sampleable_mask(self):
        """Every stored row is a whole transition."""
        return np.ones(self.size, bool)

    def decode(self, idx):
        """Rows `idx` as views (obs, action, reward, next_obs, done) of the batch table."""
        plan = self._plans.get(idx.size)
        if plan is None:
            plan = self._decode_plan(idx.size)
        rows32, rows, self.obs_action, columns = plan
        if self._fused:
            fused_steps.take_rows(self._table, idx, rows)
        elif rows32 is None:
            np.take(self._table, idx, axis=0, out=rows)
        else:
            np.take(self._table, idx, axis=0, out=rows32)
            np.copyto(rows, rows32)
        return columns

    def _decode_plan(self, batch):
        """The batch table's views for `batch` rows, taken once (a larger batch reallocates)."""
        if self._rows.shape[0] < batch:
            self._rows32 = np.zeros((batch, self._table.shape[1]), np.float32)
            self._rows = np.zeros((batch, self._table.shape[1]), self.dtype)
            self._plans = {}
        rows = self._rows[:batch]
        rows32 = None if self.dtype == np.float32 else self._rows32[:batch]
        plan = self._plans[batch] = (rows32, rows, rows[:, self._obs_action_cols],
                                     tuple(rows[:, c] for c in self._cols))
        return plan
