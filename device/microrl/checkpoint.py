"""Checkpoints of a whole training run, in two slots, so that a power cut at any instant leaves the
newest complete checkpoint loadable.

A slot file (``ckpt0.bin``, ``ckpt1.bin``) is a 24-byte header and a payload, little-endian:

    magic b"MRLC", format version (u8, 1), flags (u8, 1: the replay buffer is included),
    bytes per stored float (u8, 4 or 8), 0 (u8), sequence number (u32), payload bytes (u32),
    CRC-32 of the payload (u32), CRC-32 of the config's learning fields (u32)

then the counters and the generator (``_SCALARS``) and the raw storage of every array in a fixed
order: the six networks, the three Adams' moments, then (with the flag) the replay rows and the sum
tree. A save writes the slot that does not hold the newest checkpoint, in place: the header first
with a zero magic, then the payload, then the real header. A cut leaves that slot short, or with a
zero magic, or with a payload whose CRC fails; the other slot is untouched. A load takes the valid
slot with the highest sequence number and reports why any other was skipped.
See docs/CHECKPOINTS.md.
"""

import json
import struct

from .backend import STORE_BITS, const
from .weights import crc32

SLOTS = ("ckpt0.bin", "ckpt1.bin")
MAGIC = b"MRLC"
FORMAT_VERSION = const(2)
_HEADER = "<4sBBBBIIII"
_HEADER_BYTES = const(24)
# steps, episodes, episode step, critic updates, the Adams' step counts (3), the generator's state
# and increment (lo, hi each), replay size, next slot and "next add starts an episode", 2 spare;
# then the episode's return and the largest priority; then the environment's get_state() floats.
_SCALARS = "<16I2d"
_SCALARS_BYTES = const(80)
_FLAG_REPLAY = const(1)
_MASK32 = const(0xFFFFFFFF)
_SCRATCH_BYTES = const(512)
_EROFS = const(30)
_READ_ONLY = ("cannot write %s: the filesystem is read-only. On CircuitPython code may not write "
              "the drive while USB mounts it: put storage.remount(\"/\", readonly=False) in "
              "boot.py (the computer then sees the drive read-only), or set checkpoint_every 0")
# Fields that set how long a run is or how it reports, not what it computes: a run resumed with
# other values continues the same learning.
_RUN_FIELDS = ("total_steps", "eval_every", "eval_episodes", "checkpoint_every",
               "checkpoint_replay")


class CheckpointError(ValueError):
    """No slot holds a checkpoint this learner can load (the message says why, per slot)."""


def _config_crc(config):
    d = config.to_dict()
    return crc32(json.dumps(sorted((k, d[k]) for k in d if k not in _RUN_FIELDS)).encode())


def _storage(m, item_bytes):
    """(buffer, bytes) of a matrix's raw storage: the array of a pure-Python matrix, or the
    ndarray's own memory (numpy exports a buffer; ulab's tobytes() is a view of its data)."""
    if isinstance(m, tuple):
        return m[0], len(m[0]) * item_bytes
    try:
        raw = memoryview(m).cast("B")
    except (TypeError, AttributeError):  # ulab: no buffer export, tobytes() shares the data
        raw = m.tobytes()
    return raw, len(raw)


def resume(trainer):
    """Load ``trainer``'s newest valid checkpoint; returns what ``Checkpointer.load`` returns.
    Without the replay buffer in it, updates wait ``learning_starts`` steps (at least one) while
    the buffer refills, so the run is not the one it would have been uninterrupted."""
    if trainer.checkpoint is None:
        trainer.checkpoint = Checkpointer(trainer)
    info = trainer.checkpoint.load()
    if not trainer.checkpoint.replay:
        trainer._train_from = trainer.steps + max(trainer.config.learning_starts, 1)
    return info


class Checkpointer:
    """Saves and loads ``trainer``'s state in the slot files ``paths``; ``replay``: include the
    replay buffer (default: the config's ``checkpoint_replay``)."""

    def __init__(self, trainer, replay=None, paths=SLOTS):
        c = trainer.config
        self.trainer = trainer
        self.paths = paths
        self.replay = c.checkpoint_replay if replay is None else replay
        self.config_crc = _config_crc(c)
        self.seq = None  # the newest sequence number on flash; None until the slots are read
        self.slot = 0  # the slot the next save writes
        self._header = bytearray(_HEADER_BYTES)
        env = trainer.env
        # An environment without get_state restarts its episode on resume.
        self._env_floats = len(env.get_state()) if hasattr(env, "get_state") else 0
        self._scalars = bytearray(_SCALARS_BYTES + 8 * self._env_floats)
        self._scratch = bytearray(_SCRATCH_BYTES)
        self._arrays = self._collect(trainer.agent)
        total = len(self._scalars)
        for _, n in self._arrays:
            total += n
        self.payload_bytes = total

    def _collect(self, agent):
        f = STORE_BITS // 8
        out = []
        for net in (agent.actor, agent.critic1, agent.critic2, agent.actor_target,
                    agent.critic1_target, agent.critic2_target):
            for p in ((net.flat,) if net.flat is not None else net.params):
                out.append(_storage(p, f))
        for adam in (agent.actor_adam, agent.critic1_adam, agent.critic2_adam):
            if getattr(adam, "integer", False):  # viper: intadam.IntAdam, int16 m and int32 v
                out += [_storage(m, 2) for m in adam.m] + [_storage(v, 4) for v in adam.v]
                out.append(_storage(adam.scales, 4))
                continue
            moment_bytes = 2 if adam.int16 else f
            for m in adam.m + adam.v:
                out.append(_storage(m, moment_bytes))
            if adam.int16:
                out.append(_storage(adam.scales, f))
        if self.replay:
            buf = agent.buffer
            row_bytes = 2 if hasattr(buf, "_fresh") else 4  # int16 codes or float32 rows
            for chunk in buf._chunks:
                out.append((chunk, len(chunk) * row_bytes))
            if agent.per is not None:
                nodes = agent.per.tree.nodes
                out.append((nodes, len(nodes) * f))
        return out

    @property
    def file_bytes(self):
        """Size of one slot file."""
        return _HEADER_BYTES + self.payload_bytes

    def _pack_scalars(self):
        t = self.trainer
        agent = t.agent
        rng, env, buf = t.rng, t.env, agent.buffer
        state, inc = rng._state, rng._inc  # PCG32's two words
        struct.pack_into(
            _SCALARS, self._scalars, 0, t.steps, t.episodes, t._episode_steps,
            agent.critic_updates, agent.actor_adam.t, agent.critic1_adam.t, agent.critic2_adam.t,
            state & _MASK32, state >> 32, inc & _MASK32, inc >> 32, buf.size, buf._next,
            1 if getattr(buf, "_fresh", False) else 0, 0, 0, t.episode_return,
            agent.per.max_priority if agent.per is not None else 0.0)
        if self._env_floats:
            struct.pack_into("<%dd" % self._env_floats, self._scalars, _SCALARS_BYTES,
                             *env.get_state())

    def _unpack_scalars(self):
        t = self.trainer
        agent = t.agent
        v = struct.unpack_from(_SCALARS, self._scalars, 0)
        t.steps, t.episodes, t._episode_steps = v[0], v[1], v[2]
        agent.critic_updates = v[3]
        agent.actor_adam.t, agent.critic1_adam.t, agent.critic2_adam.t = v[4], v[5], v[6]
        t.rng._state, t.rng._inc = v[7] | (v[8] << 32), v[9] | (v[10] << 32)
        t.episode_return = v[16]
        if self._env_floats:
            t.obs = t.env.set_state(struct.unpack_from("<%dd" % self._env_floats, self._scalars,
                                                       _SCALARS_BYTES))
        else:  # the environment cannot be put back: the interrupted episode starts again
            t._restart()
        if self.replay:
            buf = agent.buffer
            buf.size, buf._next = v[11], v[12]
            if hasattr(buf, "_fresh"):
                buf._fresh = bool(v[13])
            if agent.per is not None:
                agent.per.max_priority = v[17]
            if not self._env_floats:
                buf.cut()  # the interrupted episode restarted: its stored last step ends it
        if agent.qactor is not None:
            agent.qactor.refresh(agent.actor)

    def save(self):
        """Write the whole state into the older slot; returns the bytes written."""
        if self.seq is None:
            self.scan()
        seq = self.seq + 1
        self._pack_scalars()
        header = self._header
        path = self.paths[self.slot]
        try:
            f = open(path, "wb")
        except OSError as e:
            if e.args and e.args[0] == _EROFS:
                raise CheckpointError(_READ_ONLY % path)
            raise
        with f:
            struct.pack_into(_HEADER, header, 0, b"\0\0\0\0", 0, 0, 0, 0, 0, 0, 0, 0)
            f.write(header)
            crc = crc32(self._scalars)
            f.write(self._scalars)
            for buf, _ in self._arrays:
                crc = crc32(buf, crc)
                f.write(buf)
            f.seek(0)
            struct.pack_into(_HEADER, header, 0, MAGIC, FORMAT_VERSION,
                             _FLAG_REPLAY if self.replay else 0, STORE_BITS // 8, 0, seq,
                             self.payload_bytes, crc, self.config_crc)
            f.write(header)
        self.seq = seq
        self.slot = 1 - self.slot
        return self.file_bytes

    def _header_of(self, f):
        """(seq, payload crc) from an open slot's header; raises CheckpointError saying why not."""
        header = self._header
        if f.readinto(header) != _HEADER_BYTES:
            raise CheckpointError("shorter than a header")
        magic, version, flags, float_bytes, _, seq, length, crc, config_crc = \
            struct.unpack_from(_HEADER, header, 0)
        if magic != MAGIC:
            raise CheckpointError("no checkpoint magic (a write was cut)" if magic == b"\0\0\0\0"
                                  else "not a checkpoint (magic %r)" % (magic,))
        if version != FORMAT_VERSION:
            raise CheckpointError("format version %d, this board reads %d"
                                  % (version, FORMAT_VERSION))
        if config_crc != self.config_crc:
            raise CheckpointError("made with another config")
        if bool(flags & _FLAG_REPLAY) != bool(self.replay) or float_bytes != STORE_BITS // 8 \
                or length != self.payload_bytes:
            raise CheckpointError("holds %d bytes of %d-byte floats%s, this learner needs %d%s"
                                  % (length, float_bytes, " with replay" if flags & 1 else "",
                                     self.payload_bytes, " with replay" if self.replay else ""))
        return seq, crc

    def _check(self, path):
        """The slot's sequence number when its payload is whole and its CRC matches."""
        try:
            f = open(path, "rb")
        except OSError:
            raise CheckpointError("missing")
        with f:
            seq, expected = self._header_of(f)
            scratch = self._scratch
            crc = 0
            left = self.payload_bytes
            while left > 0:
                n = f.readinto(scratch)
                if not n:
                    raise CheckpointError("cut short: %d of %d payload bytes missing"
                                          % (left, self.payload_bytes))
                n = min(n, left)
                crc = crc32(scratch if n == _SCRATCH_BYTES else memoryview(scratch)[:n], crc)
                left -= n
        if crc != expected:
            raise CheckpointError("payload CRC32 mismatch (%d, header says %d)" % (crc, expected))
        return seq

    def scan(self):
        """[(path, seq or None, why skipped or None)] per slot; sets where the next save goes."""
        report = []
        for path in self.paths:
            try:
                report.append((path, self._check(path), None))
            except CheckpointError as e:
                report.append((path, None, str(e)))
        seqs = [r[1] if r[1] is not None else -1 for r in report]
        newest = 0 if seqs[0] >= seqs[1] else 1
        self.seq = max(seqs[newest], 0)
        self.slot = 1 - newest if seqs[newest] >= 0 else 0
        return report

    def load(self):
        """Restore the newest valid checkpoint; returns {"file", "seq", "steps", "skipped":
        [[file, why]] of slots that exist but are not valid}. Raises CheckpointError if none is."""
        report = self.scan()
        best = None
        for r in report:
            if r[1] is not None and (best is None or r[1] > best[1]):
                best = r
        if best is None:
            raise CheckpointError("no valid checkpoint to resume from: " + "; ".join(
                "%s: %s" % (r[0], r[2]) for r in report))
        with open(best[0], "rb") as f:
            f.readinto(self._header)
            f.readinto(self._scalars)
            for buf, _ in self._arrays:
                f.readinto(buf)
        self._unpack_scalars()
        self.seq = best[1]
        self.slot = 1 - self.paths.index(best[0])
        return {"file": best[0], "seq": best[1], "steps": self.trainer.steps,
                "skipped": [[r[0], r[2]] for r in report if r[2] is not None and r[2] != "missing"]}
