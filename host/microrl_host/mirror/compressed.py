"""Compressed replay, the mirror of device/microrl/compressed.py: 10 bytes per pendulum step.

A slot is five int16 codes: the observation the action was taken in (cos, sin, angular velocity),
the normalised action, and the reward word (14 bits of reward, a start flag 0x4000 and a terminal
flag 0x8000). The next observation of a slot is the observation of the next slot; the last step of
a truncated episode has none and is never sampled. Scales and rounding (half to even) are the
device's, so both hold the same codes; `sample` draws `rng.below(size)` per row until the slot is
sampleable, exactly the device's draws, and decodes into a preallocated batch table.
"""

import numpy as np

OBS_RANGE = (1.0, 1.0, 8.0)
REWARD_MIN = -16.3
OBS_STEP = np.array([r / 32767.0 for r in OBS_RANGE])
ACTION_STEP = 1.0 / 32767.0
REWARD_STEP = -REWARD_MIN / 16383.0
_OBS_INV = np.array([32767.0 / r for r in OBS_RANGE])
_ACTION_INV = 32767.0
_REWARD_INV = 16383.0 / -REWARD_MIN
_START = 0x4000
_TERMINAL = 0x8000
_REWARD_BITS = 0x3FFF
_FULL = 32767
BYTES_PER_STEP = 10


class CompressedReplayBuffer:
    """`CompressedReplayBuffer(capacity, obs_dim=3, act_dim=1, dtype=float64)`: int16 slots."""

    def __init__(self, capacity, obs_dim=3, act_dim=1, dtype=np.float64):
        if not isinstance(capacity, int) or capacity <= 1:
            raise ValueError(f"capacity must be an int >= 2, got {capacity!r}")
        if (obs_dim, act_dim) != (3, 1):
            raise ValueError(f"the compressed layout is the pendulum's (3, 1), got "
                             f"({obs_dim}, {act_dim})")
        self.capacity = capacity
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.dtype = np.dtype(dtype)
        self.size = 0
        self._next = 0
        self._fresh = True
        self._codes = np.zeros((capacity, 5), np.int16)
        self._word = np.zeros(capacity, np.int32)  # the reward words as unsigned ints, for masks
        self._rows = np.zeros((0, 9), self.dtype)

    def add(self, obs, action, reward, next_obs, done, episode_end=False):
        """Store one step and return its slot; `next_obs` is the next slot's observation."""
        slot = self._next
        row = self._codes[slot]
        obs_codes = np.rint(np.asarray(obs, np.float64) * _OBS_INV)
        row[:3] = np.clip(obs_codes, -_FULL, _FULL)
        row[3] = min(max(round(float(action) * _ACTION_INV), -_FULL), _FULL)
        word = min(max(round(-float(reward) * _REWARD_INV), 0), _REWARD_BITS)
        if self._fresh:
            word |= _START
        if done:
            word |= _TERMINAL
        row[4] = word - 65536 if word & _TERMINAL else word
        self._word[slot] = word
        self._fresh = bool(done) or bool(episode_end)
        self._next = (slot + 1) % self.capacity
        if self.size < self.capacity:
            self.size += 1
        return slot

    def whole(self, idx):
        """A bool per slot of `idx`: it holds a whole transition (the device's `sampleable`)."""
        idx = np.asarray(idx)
        word = self._word[idx]
        successor = self._word[(idx + 1) % self.capacity]
        ok = ((word & _TERMINAL) != 0) | ((successor & _START) == 0)
        # The newest slot's next observation is not written yet; slots past `size` are empty.
        return ok & (idx < self.size) & (idx != (self._next - 1) % self.capacity)

    def sampleable(self, slot):
        return bool(self.whole(slot))

    def sampleable_mask(self):
        """`whole` for every stored slot."""
        return self.whole(np.arange(self.size))

    def draw(self, rng, batch):
        """`batch` whole slots, drawn as the device does: `below(size)` until accepted."""
        size = self.size
        if size < 2:
            raise ValueError(f"cannot sample: the buffer holds {size} steps")
        chosen = []
        need = batch
        while need:
            idx = rng.below_array(need, size)
            keep = idx[self.whole(idx)]
            if keep.size == 0 and not self.sampleable_mask().any():
                raise ValueError(f"no sampleable transition among {size} slots")
            chosen.append(keep)
            need -= keep.size
        return np.concatenate(chosen)

    def decode(self, idx):
        """The transitions of slots `idx` as views (obs, action, reward, next_obs, done)."""
        batch = idx.size
        if self._rows.shape[0] < batch:
            self._rows = np.zeros((batch, 9), self.dtype)
        rows = self._rows[:batch]
        codes = self._codes[idx].astype(np.float64)
        nxt = self._codes[(idx + 1) % self.capacity, :3].astype(np.float64)
        word = self._word[idx]
        rows[:, 0:3] = codes[:, :3] * OBS_STEP
        rows[:, 3] = codes[:, 3] * ACTION_STEP
        rows[:, 4] = -(word & _REWARD_BITS) * REWARD_STEP
        rows[:, 5:8] = nxt * OBS_STEP
        rows[:, 8] = (word & _TERMINAL) != 0
        self.obs_action = rows[:, 0:4]
        return rows[:, 0:3], rows[:, 3:4], rows[:, 4:5], rows[:, 5:8], rows[:, 8:9]

    def sample(self, rng, batch):
        """Draw `batch` transitions with replacement; views into a table the next call reuses."""
        if not isinstance(batch, int) or batch <= 0 or batch > self.capacity:
            raise ValueError(f"batch must be in [1, capacity={self.capacity}], got {batch!r}")
        return self.decode(self.draw(rng, batch))
