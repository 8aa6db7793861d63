"""Compressed replay: one environment step in int16 codes (10 bytes for the pendulum), decoded
into the float batch.

After replay compression by differentially encoded observations: a slot holds one environment
step as obs_dim + act_dim + 1 int16 codes, the observation the action was taken in, the normalised
action, and the reward with two flags. The next observation is not stored: inside an episode it is
the observation of the next slot. Flag bits:

- start (0x4000 of the reward word): the slot begins an episode. The slot before it (the last step
  of a truncated episode) has no next observation stored and is never sampled.
- terminal (0x8000): the step ended the episode (done = 1); its next observation is not used.

Codes use the environment's bounds: observation field j in [obs_low[j], obs_high[j]] steps by
(high - low) / 2 / 32767 around the centre of its bounds, each action in [-1, 1] by 1/32767, the
reward in reward_range by (high - low) / 16383 in the word's 14 low bits; values outside are
clipped. For the pendulum: cos and sin by 1/32767, the angular velocity in [-8, 8] rad/s by
8/32767, the reward in [-16.3, 0] by 16.3/16383. Encoding rounds half to even, so decoding is within
half a step of the stored value. A float32 row of the same pendulum transition takes 36 bytes.

Storage is ``array('h')`` chunks of at most ``_CHUNK_BYTES`` (every backend, no large single
block). Sampling draws ``rng.below(size)`` per row until the slot has a next observation (rejection,
in row order) and writes the decoded values straight into the learner's preallocated ``Batch``.
"""

from .backend import const, zeros
from .td3 import Diverged

_HUGE = 1e30  # larger is no observation, reward or action (the codes clip far below)
ACTION_STEP = 1.0 / 32767.0
ACTION_INV = 32767.0
_CHUNK_BYTES = const(4000)  # per chunk (400 pendulum slots): a fragmented heap has such holes
_START = const(0x4000)
_TERMINAL = const(0x8000)
_REWARD_BITS = const(0x3FFF)
_FULL = const(32767)


def _code(x, inv, limit):
    if not -_HUGE < x < _HUGE:  # NaN or infinity from the environment: no code, a divergence
        raise Diverged("a value the environment returned")
    q = round(x * inv)
    return -limit if q < -limit else (limit if q > limit else q)


class CompressedReplay:
    """``CompressedReplay(capacity, env)``: ``capacity`` slots of 2 (obs_dim + act_dim + 1) bytes,
    one per environment step, coded with ``env``'s ``obs_low``/``obs_high`` and ``reward_range``."""

    def __init__(self, capacity, env):
        if not isinstance(capacity, int) or capacity <= 1:
            raise ValueError("capacity must be an integer >= 2, got %r" % (capacity,))
        for name in ("obs_low", "obs_high", "reward_range"):
            if getattr(env, name, None) is None:
                raise ValueError("compressed replay needs the environment's %s" % name)
        self.capacity = capacity
        self.size = 0
        self._next = 0
        self._fresh = True  # the next add starts an episode
        od, ad = env.obs_dim, env.act_dim
        self._od, self._ad = od, ad
        self._words = w = od + ad + 1
        # Per observation field: the centre of its bounds, the decode step and the encode factor.
        half = [(env.obs_high[j] - env.obs_low[j]) / 2.0 for j in range(od)]
        centre = tuple((env.obs_high[j] + env.obs_low[j]) / 2.0 for j in range(od))
        # None for bounds symmetric about 0 (the pendulum's): no addition, no float box per field
        self._centre = centre if any(centre) else None
        self.obs_step = tuple(h / 32767.0 for h in half)
        self._obs_inv = tuple(32767.0 / h for h in half)
        low, high = env.reward_range
        self._reward_high = high
        self.reward_step = (high - low) / 16383.0
        self._reward_inv = 16383.0 / (high - low)
        self._chunk_rows = per = max(1, _CHUNK_BYTES // (2 * w))
        source = bytes(2 * w * min(per, capacity))  # one zero block to copy
        self._chunks = [zeros("h", w * min(per, capacity - start), source)
                        for start in range(0, capacity, per)]

    def add(self, obs, action, reward, next_obs, done, episode_end=False):
        """Store one step and return its slot; ``next_obs`` is the next slot's observation.

        ``episode_end``: this step truncates the episode (the next add starts a new one).
        """
        slot = self._next
        od, per = self._od, self._chunk_rows
        d = self._chunks[slot // per]
        base = (slot % per) * self._words
        centre, inv = self._centre, self._obs_inv
        for j in range(od):
            v = obs[j]
            if centre is not None:
                v -= centre[j]
            d[base + j] = _code(v, inv[j], _FULL)
        for j in range(self._ad):
            d[base + od + j] = _code(action[j], ACTION_INV, _FULL)
        word = _code(self._reward_high - reward, self._reward_inv, _REWARD_BITS)
        word = 0 if word < 0 else word
        if self._fresh:
            word |= _START
        if done:
            word |= _TERMINAL
        d[base + self._words - 1] = word - 65536 if word & _TERMINAL else word
        self._fresh = bool(done) or episode_end
        self._next = (slot + 1) % self.capacity
        if self.size < self.capacity:
            self.size += 1
        return slot

    def cut(self):
        """The episode in progress ends here untold (a restart): its last step has no successor."""
        self._fresh = True

    def clear(self):
        """Forget every stored step (the divergence guard's restore without the buffer)."""
        self.size = self._next = 0
        self._fresh = True

    def _word(self, slot):
        per, w = self._chunk_rows, self._words
        return self._chunks[slot // per][(slot % per) * w + w - 1] & 0xFFFF

    def sampleable(self, slot):
        """True when ``slot`` holds a whole transition: its next observation is stored."""
        if slot == (self._next - 1) % self.capacity or slot >= self.size:
            return False  # the newest step's next observation is not written yet
        if self._word(slot) & _TERMINAL:
            return True
        return not self._word((slot + 1) % self.capacity) & _START

    def decode(self, slot, batch, i):
        """Write slot's transition, dequantized, into row ``i`` of ``batch``."""
        chunks, per, w = self._chunks, self._chunk_rows, self._words
        od, ad = self._od, self._ad
        d = chunks[slot // per]
        base = (slot % per) * w
        nxt = (slot + 1) % self.capacity
        dn = chunks[nxt // per]
        nbase = (nxt % per) * w
        o = i * od
        sa = i * (od + ad)
        obs, bsa, nxt, nsa = batch.obs_d, batch.sa_d, batch.next_obs_d, batch.next_sa_d
        centre, step = self._centre, self.obs_step
        for j in range(od):
            v = d[base + j] * step[j]
            u = dn[nbase + j] * step[j]
            if centre is not None:
                v += centre[j]
                u += centre[j]
            obs[o + j] = v
            bsa[sa + j] = v
            nxt[o + j] = u
            nsa[sa + j] = u
        for j in range(ad):
            bsa[sa + od + j] = d[base + od + j] * ACTION_STEP
        word = d[base + w - 1] & 0xFFFF
        batch.reward_d[i] = self._reward_high - (word & _REWARD_BITS) * self.reward_step
        batch.done_d[i] = 1.0 if word & _TERMINAL else 0.0

    def draw(self, rng):
        """A uniformly drawn sampleable slot: ``rng.below(size)`` until one is (``sampleable``
        written out: a board spends more on its two calls than on the test)."""
        size, cap = self.size, self.capacity
        newest = (self._next - 1) % cap
        chunks, per, w = self._chunks, self._chunk_rows, self._words
        last = w - 1
        for _ in range(64 * size):
            slot = rng.below(size)
            if slot == newest:
                continue  # its next observation is not written yet
            if chunks[slot // per][slot % per * w + last] & _TERMINAL:
                return slot
            nxt = slot + 1 if slot + 1 < cap else 0
            if not chunks[nxt // per][nxt % per * w + last] & _START:
                return slot
        raise ValueError("no sampleable transition among %d slots" % size)

    def sample(self, rng, n, batch):
        """Fill the first n rows of ``batch`` with transitions drawn uniformly with replacement."""
        if self.size < 2:
            raise ValueError("cannot sample: the buffer holds %d steps" % self.size)
        for i in range(n):
            self.decode(self.draw(rng), batch, i)


def _machine_code():
    """compressed_viper's CompressedReplay (the same batches, decoded in machine code) where the
    firmware compiles viper and the backend dequantizes in arrays: ulab, or K.affine in machine
    code (kernels_asm). (Not where affine is a Python loop: it costs more than the decode.)"""
    from .backend import K
    if getattr(K, "AFFINE", None) not in ("ulab", "asm"):
        return None
    try:
        from .compressed_viper import CompressedReplay as fast
    except (ImportError, SyntaxError, ValueError):  # no emitter, or native code for another core
        return None
    return fast


CompressedReplay = _machine_code() or CompressedReplay
