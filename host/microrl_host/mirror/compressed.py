"""Compressed replay, the mirror of device/microrl/compressed.py: int16 codes, 10 bytes per
pendulum step.

A slot is obs_dim + act_dim + 1 int16 codes: the observation the action was taken in (coded around
the centre of the environment's obs_low/obs_high), the normalised actions, and the reward word (14
bits of reward in reward_range, a start flag 0x4000 and a terminal flag 0x8000). The next
observation of a slot is the observation of the next slot; the last step of a truncated episode has
none and is never sampled. Scales and rounding (half to even) are the device's, so both hold the
same codes; `sample` draws `rng.below(size)` per row until the slot is sampleable, exactly the
device's draws, and decodes into a preallocated batch table.
"""

import numpy as np

from microrl_host.mirror.pendulum import Pendulum

ACTION_STEP = 1.0 / 32767.0
_ACTION_INV = 32767.0
_START = 0x4000
_TERMINAL = 0x8000
_REWARD_BITS = 0x3FFF
_FULL = 32767
# The pendulum's scales (tests and the memory model use them).
OBS_STEP = np.array([(h - lo) / 2.0 / 32767.0 for lo, h in zip(Pendulum.obs_low, Pendulum.obs_high)])
REWARD_STEP = (Pendulum.reward_range[1] - Pendulum.reward_range[0]) / 16383.0


class CompressedReplayBuffer:
    """`CompressedReplayBuffer(capacity, env=None, dtype=float64)`: int16 slots coded with `env`'s
    bounds (default: the pendulum's)."""

    def __init__(self, capacity, env=None, dtype=np.float64):
        if not isinstance(capacity, int) or capacity <= 1:
            raise ValueError(f"capacity must be an int >= 2, got {capacity!r}")
        env = Pendulum() if env is None else env
        for name in ("obs_low", "obs_high", "reward_range"):
            if getattr(env, name, None) is None:
                raise ValueError(f"compressed replay needs the environment's {name}")
        od, ad = self.obs_dim, self.act_dim = env.obs_dim, env.act_dim
        self.capacity = capacity
        self.dtype = np.dtype(dtype)
        self.size = 0
        self._next = 0
        self._fresh = True
        low, high = np.asarray(env.obs_low, np.float64), np.asarray(env.obs_high, np.float64)
        half = (high - low) / 2.0
        self._centre = (high + low) / 2.0
        self.obs_step = half / 32767.0
        self._obs_inv = 32767.0 / half
        r_low, r_high = (float(v) for v in env.reward_range)
        self._reward_high = r_high
        self.reward_step = (r_high - r_low) / 16383.0
        self._reward_inv = 16383.0 / (r_high - r_low)
        self._words = od + ad + 1
        self._codes = np.zeros((capacity, self._words), np.int16)
        self._word = np.zeros(capacity, np.int32)  # the reward words as unsigned ints, for masks
        self._rows = np.zeros((0, 2 * od + ad + 2), self.dtype)

    def add(self, obs, action, reward, next_obs, done, episode_end=False):
        """Store one step and return its slot; `next_obs` is the next slot's observation."""
        slot = self._next
        row = self._codes[slot]
        od, ad = self.obs_dim, self.act_dim
        obs_codes = np.rint((np.asarray(obs, np.float64) - self._centre) * self._obs_inv)
        row[:od] = np.clip(obs_codes, -_FULL, _FULL)
        act = np.asarray(action, np.float64).reshape(ad)
        row[od:od + ad] = np.clip(np.rint(act * _ACTION_INV), -_FULL, _FULL)
        word = min(max(round((self._reward_high - float(reward)) * self._reward_inv), 0),
                   _REWARD_BITS)
        if self._fresh:
            word |= _START
        if done:
            word |= _TERMINAL
        row[od + ad] = word - 65536 if word & _TERMINAL else word
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
        od, ad = self.obs_dim, self.act_dim
        if self._rows.shape[0] < batch:
            self._rows = np.zeros((batch, 2 * od + ad + 2), self.dtype)
        rows = self._rows[:batch]
        codes = self._codes[idx].astype(np.float64)
        nxt = self._codes[(idx + 1) % self.capacity, :od].astype(np.float64)
        word = self._word[idx]
        r0 = od + ad
        n0 = r0 + 1
        rows[:, 0:od] = self._centre + codes[:, :od] * self.obs_step
        rows[:, od:r0] = codes[:, od:r0] * ACTION_STEP
        rows[:, r0] = self._reward_high - (word & _REWARD_BITS) * self.reward_step
        rows[:, n0:n0 + od] = self._centre + nxt * self.obs_step
        rows[:, n0 + od] = (word & _TERMINAL) != 0
        self.obs_action = rows[:, 0:r0]
        return (rows[:, 0:od], rows[:, od:r0], rows[:, r0:n0], rows[:, n0:n0 + od],
                rows[:, n0 + od:n0 + od + 1])

    def sample(self, rng, batch):
        """Draw `batch` transitions with replacement; views into a table the next call reuses."""
        if not isinstance(batch, int) or batch <= 0 or batch > self.capacity:
            raise ValueError(f"batch must be in [1, capacity={self.capacity}], got {batch!r}")
        return self.decode(self.draw(rng, batch))
