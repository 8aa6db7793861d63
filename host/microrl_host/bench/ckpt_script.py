"""The script ``microrl bench-checkpoint`` runs on a board (a QEMU firmware over the raw REPL, or
the desktop micropython): ``script(learner, train_steps, repeat, mount)`` is its text.

The QEMU firmware has no writable filesystem (only a read-only ROM), so the script mounts a RAM
filesystem of its own (``_RamFS``, MicroPython's VFS protocol) at ``mount`` and measures the
checkpoint there: what it counts is the CPU work of a save (packing the counters, CRC-32 over the
payload, handing the bytes to the filesystem), not a flash write. Both slot names refer to one RAM
file (``ckpt.bin``), so the heap holds one copy of a slot: a save, a scan and a load do the same
work as with two files. The last output line is one JSON document.
"""

_SCRIPT = r'''
import gc, io, json, struct, time
import vfs
import os
import microrl
if _BACKEND is not None:
    microrl.BACKEND_CHOICE = _BACKEND  # before the backend loads, as app.start does
from microrl.backend import NAME, STORE_BITS
from microrl.checkpoint import Checkpointer
from microrl.config import TD3Config
from microrl.train import Trainer


class _File:
    def __init__(self, entry, writing):
        self._entry = entry
        self._bio = entry[0]
        self._bio.seek(0)
        self._pos = 0
        if writing:
            entry[1] = 0

    def write(self, buf):
        n = self._bio.write(buf)
        self._pos += n
        if self._pos > self._entry[1]:
            self._entry[1] = self._pos
        return n

    def readinto(self, buf):
        left = self._entry[1] - self._pos
        if left <= 0:
            return 0
        n = min(self._bio.readinto(buf), left)
        self._pos += n
        return n

    def read(self, n=-1):
        left = self._entry[1] - self._pos
        n = left if n < 0 or n > left else n
        data = self._bio.read(max(n, 0))
        self._pos += len(data)
        return data

    def seek(self, pos, whence=0):
        self._pos = pos if whence == 0 else (self._pos + pos if whence == 1
                                             else self._entry[1] + pos)
        self._bio.seek(self._pos)
        return self._pos

    def tell(self):
        return self._pos

    def flush(self):
        pass

    def close(self):
        self._entry = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _RamFS:
    """A flat RAM filesystem: {name: [io.BytesIO, size]}. A file takes a buffer of ``spare``
    (allocated before the learner, while the heap is whole) when one is left; a file rewritten
    keeps its buffer; a file removed gives its buffer back."""

    def __init__(self, spare=()):
        self._files = {}
        self._spare = list(spare)
        self._cwd = "/"

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def _name(self, path):
        name = path.lstrip("/")
        if "/" in name:
            raise OSError(2)  # no directories
        return name

    def open(self, path, mode):
        name = self._name(path)
        entry = self._files.get(name)
        if "w" in mode:
            if entry is None:
                bio = self._spare.pop() if self._spare else io.BytesIO()
                entry = self._files[name] = [bio, 0]
            return _File(entry, True)
        if entry is None:
            raise OSError(2)
        return _File(entry, False)

    def stat(self, path):
        name = self._name(path)
        if name == "":
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if name not in self._files:
            raise OSError(2)
        return (0x8000, 0, 0, 0, 0, 0, self._files[name][1], 0, 0, 0)

    def ilistdir(self, path):
        for name in self._files:
            yield (name, 0x8000, 0, self._files[name][1])

    def remove(self, path):
        entry = self._files.pop(self._name(path), None)
        if entry is None:
            raise OSError(2)
        self._spare.append(entry[0])

    def rename(self, old, new):
        entry = self._files.pop(self._name(old), None)
        if entry is None:
            raise OSError(2)
        self._files[self._name(new)] = entry

    def chdir(self, path):
        self._cwd = path

    def getcwd(self):
        return self._cwd

    def statvfs(self, path):
        return (512, 512, 0, 0, 0, 0, 0, 0, 0, 255)


def _ticks(fn, repeat):
    out = []
    for _ in range(repeat):
        gc.collect()
        start = time.ticks_us()
        fn()
        out.append(time.ticks_diff(time.ticks_us(), start))
    return out


def _payload_crc():
    header = bytearray(24)
    with open("ckpt.bin", "rb") as f:
        f.readinto(header)
    return struct.unpack_from("<I", header, 16)[0]


def _measure(t, fs, replay, repeat):
    ck = Checkpointer(t, replay=replay, paths=("ckpt.bin", "ckpt.bin"))
    out = {"file_bytes": ck.file_bytes, "payload_bytes": ck.payload_bytes}
    try:
        gc.collect()
        ck.save()  # the first: reads the empty slots
        crc = _payload_crc()
        out["save_us"] = _ticks(ck.save, repeat)
        out["scan_us"] = _ticks(ck.scan, repeat)
        t.steps += 1  # changed here, put back by the load
        out["load_us"] = _ticks(ck.load, repeat)
        ck.save()
        out["same_state"] = _payload_crc() == crc  # the load gave back what was saved
        out["seq"] = ck.seq
    except MemoryError as e:
        out["error"] = "MemoryError: %s" % (e,)
    ck = None
    if "ckpt.bin" in fs._files:
        os.remove("ckpt.bin")
    gc.collect()
    return out


def _main(learner, train_steps, repeat, mount):
    gc.collect()
    result = {"backend": NAME, "store_bits": STORE_BITS, "train_steps": train_steps}
    config = TD3Config(**learner)
    try:
        # The RAM file first, while the heap is whole: a board keeps its slots in flash, and a
        # block of the slot's size may not be found in the heap once the learner lives in it.
        t = Trainer(config)
        slot_bytes = Checkpointer(t, replay=True).file_bytes
        t = None
        gc.collect()
        store = io.BytesIO(slot_bytes)
        t = Trainer(config)
        for _ in range(train_steps):
            t.step()
    except MemoryError as e:
        result["error"] = "MemoryError in the learner: %s" % (e,)
        return result
    result["critic_updates"] = t.agent.critic_updates
    fs = _RamFS([store])
    store = None
    vfs.mount(fs, mount)
    os.chdir(mount)
    try:
        gc.collect()
        result["heap_free_bytes"] = gc.mem_free()
        result["state"] = _measure(t, fs, False, repeat)
        result["replay"] = _measure(t, fs, True, repeat)
    finally:
        os.chdir("/")
        vfs.umount(mount)
    return result

'''


def script(learner, train_steps, repeat, mount="/", backend=None):
    """The text of the benchmark for ``learner`` (TD3Config fields), trained ``train_steps`` steps,
    each figure ``repeat`` times, the RAM filesystem at ``mount``; ``backend``: the device backend
    to force (``python``, ``ulab``, ``viper``; None: the firmware's own choice)."""
    return ("_BACKEND = %r\n" % (backend,) + _SCRIPT
            + "\nprint(json.dumps(_main(%r, %d, %d, %r)))\n" % (dict(learner), train_steps, repeat,
                                                               mount))
