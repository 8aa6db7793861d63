"""The command loop: serves the board protocol (protocol.py) on the USB serial.

Commands: ``hello``, ``bench``, ``train``, ``stop``, ``eval``, ``get_weights``, ``set_weights``,
``save_weights``, ``load_weights``, ``reset`` (``"resume": true``: from the newest checkpoint),
``files`` (sizes and CRC-32s of the learner's files and of the package) and ``read_file`` (one of
the learner's files in chunks). The learner is built on first use from the board's settings
(``microrl.json``), so ``hello`` answers even when the configured learner does not fit.

While ``train`` runs, the loop polls stdin between steps (on ports that can poll): ``stop`` ends the
run early (the train reply then says ``"stopped": true``) and any other command gets the error reply
``busy: training`` while training goes on. On a port that cannot poll, commands wait for the run's
end. Every failing command becomes an error reply; the loop ends only when stdin closes or on
KeyboardInterrupt (Ctrl-C, which is how mpremote takes the board back).
"""

import gc

from . import __version__, weights
from .bench import NAMES as BENCH_NAMES, measure
from .clock import elapsed_s, ticks_ms
from .config import TD3Config
from .lineio import LineReader
from .protocol import VERSION, Channel, ProtocolError, finite, parse
from .rng import Rng
from .sysinfo import describe, heap
from .train import Trainer, evaluate

MAX_LINE_BYTES = 2048  # a set_weights chunk of 768 bytes is a line of about 1.1 KB
CHUNK_BYTES = 768  # raw bytes per get_weights chunk: 1024 base64 characters
_MAX_CHUNK_BYTES = 2048
_BENCH_STREAM = 3  # Rng stream of the benchmarks' random draws (0: training, 1: evaluation)
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
_MAX_NAME_CHARS = 32


def _int_arg(request, name, default=None, low=None, high=None):
    value = request.get(name, default)
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("%s must be an integer, got %r" % (name, value), request.get("id"))
    if high is None and low is not None and value < low:
        raise ProtocolError("%s must be >= %d, got %d" % (name, low, value), request.get("id"))
    if high is not None and not low <= value <= high:
        raise ProtocolError("%s must be in [%d, %d], got %d" % (name, low, high, value),
                            request.get("id"))
    return value


def _weights_name(name):
    """True for a name ``save_weights``/``load_weights`` may use: letters, digits, ``_`` and ``-``
    then ``.bin``, in the working directory, and not a checkpoint slot. (Any path would let a
    request overwrite ``main.py`` or the settings.)"""
    from .checkpoint import SLOTS
    stem = name[:-4]
    if not name.endswith(".bin") or not 0 < len(stem) <= _MAX_NAME_CHARS - 4 or name in SLOTS:
        return False
    for ch in stem:
        if ch not in _NAME_CHARS:
            return False
    return True


class Server:
    """One board session: the learner, an upload in progress, and the command table."""

    def __init__(self, settings=None, reader=None, channel=None):
        settings = settings or {}
        self.config_overrides = dict(settings.get("config") or {})
        if settings.get("seed") is not None:
            self.config_overrides["seed"] = settings["seed"]
        self.weights_file = settings.get("weights") or "actor.bin"
        self.board = settings.get("board")  # the profile deploy wrote, to name results by
        self.reader = reader if reader is not None else LineReader(MAX_LINE_BYTES)
        self.out = channel if channel is not None else Channel()
        self.trainer = None
        self._upload = None
        self._commands = {
            "hello": self.hello, "bench": self.bench, "train": self.train, "stop": self.stop,
            "eval": self.eval, "get_weights": self.get_weights, "set_weights": self.set_weights,
            "save_weights": self.save_weights, "load_weights": self.load_weights,
            "reset": self.reset, "files": self.files, "read_file": self.read_file,
        }

    def serve(self):
        """Announce readiness, then answer lines until stdin closes."""
        self.out.event(None, "ready", {"protocol": VERSION, "microrl": __version__})
        while True:
            try:
                line = self.reader.read_line()
            except EOFError:
                return
            self.handle(line)

    def handle(self, line, training=False):
        """Answer one input line; returns True when it is a ``stop`` for the running ``train``."""
        if not line.strip():
            return False
        request_id = None
        try:
            request = parse(line, self.reader.dropped_bytes, self.reader.max_line_bytes)
            request_id = request.get("id")
            cmd = request["cmd"]
            if training:
                if cmd == "stop":
                    self.out.reply(request_id, {"stopping": True})
                    return True
                raise ProtocolError("busy: training (send stop to end it)", request_id)
            handler = self._commands.get(cmd)
            if handler is None:
                raise ProtocolError("unknown command %r" % cmd, request_id)
            handler(request_id, request)
        except ProtocolError as e:
            self.out.error(e.request_id if e.request_id is not None else request_id, str(e))
        except Exception as e:  # the loop's error boundary: a failed command is a reply, not the end
            gc.collect()
            self.out.error(request_id, "%s: %s" % (type(e).__name__, e), e)
        return False

    # The learner

    def _config(self, request):
        """The session's config overrides with the request's ``config`` and ``seed`` on top."""
        overrides = dict(self.config_overrides)
        extra = request.get("config")
        if extra is not None:
            if not isinstance(extra, dict):
                raise ProtocolError("config must be an object", request.get("id"))
            overrides.update(extra)
        if request.get("seed") is not None:
            overrides["seed"] = _int_arg(request, "seed", low=0)
        return TD3Config(**overrides), overrides

    def _build(self, config):
        self.trainer = None  # free the old learner before allocating the new one
        self._upload = None
        gc.collect()
        self.trainer = Trainer(config)

    def learner(self):
        if self.trainer is None:
            self._build(TD3Config(**self.config_overrides))
        return self.trainer

    # Commands

    def hello(self, request_id, request):
        info = describe()
        trainer = self.trainer
        info.update({
            "protocol": VERSION,
            "board": self.board,
            "commands": sorted(self._commands),
            "benchmarks": list(BENCH_NAMES),
            "max_line_bytes": self.reader.max_line_bytes,
            "learner": None if trainer is None else {
                "steps": trainer.steps, "episodes": trainer.episodes,
                "config": trainer.config.to_dict()},
        })
        self.out.reply(request_id, info)

    def reset(self, request_id, request):
        resume = request.get("resume")
        if resume is not None and not isinstance(resume, bool):
            raise ProtocolError("resume must be true or false, got %r" % (resume,), request_id)
        config, overrides = self._config(request)
        self._build(config)
        self.config_overrides = overrides
        fields = {"config": config.to_dict()}
        if resume:
            from .checkpoint import resume as resume_from
            fields["resumed"] = resume_from(self.trainer)
        fields["heap_free_bytes"], fields["heap_alloc_bytes"] = heap()
        self.out.reply(request_id, fields)

    def bench(self, request_id, request):
        name = request.get("name")
        repeat = _int_arg(request, "repeat", 10, 1, 100000)
        trainer = self.learner()
        rng = Rng(trainer.config.seed, _BENCH_STREAM)
        self.out.reply(request_id, measure(name, trainer, rng, repeat))

    def train(self, request_id, request):
        steps = _int_arg(request, "steps", None, 1)
        if request.get("config") is not None or request.get("seed") is not None:
            config, overrides = self._config(request)
            self._build(config)
            self.config_overrides = overrides
        trainer = self.learner()
        reader = self.reader
        can_poll = reader.can_poll()
        start_ms = ticks_ms()
        first = trainer.steps
        last = None
        stopped = False
        while trainer.steps - first < steps:
            finished = trainer.step()
            if finished is not None:
                last = finished
                self.out.event(request_id, "episode", {
                    "episode": trainer.episodes, "step": trainer.steps, "return": finite(finished),
                    "elapsed_s": elapsed_s(start_ms)})
            if can_poll:
                try:
                    line = reader.poll_line()
                except EOFError:  # nobody left to send commands: train on, the loop ends after
                    can_poll = False
                    line = None
                if line is not None and self.handle(line, training=True):
                    stopped = True
                    break
        seconds = elapsed_s(start_ms)
        done = trainer.steps - first
        self.out.reply(request_id, {
            "steps": done, "total_steps": trainer.steps, "episodes": trainer.episodes,
            "last_return": finite(last), "elapsed_s": seconds, "stopped": stopped,
            "steps_per_s": done / seconds if seconds > 0 else None})

    def stop(self, request_id, request):
        raise ProtocolError("not training: nothing to stop", request_id)

    def eval(self, request_id, request):
        trainer = self.learner()
        c = trainer.config
        episodes = _int_arg(request, "episodes", c.eval_episodes, 1)
        seed = _int_arg(request, "seed", c.seed, 0)
        start_ms = ticks_ms()
        mean = evaluate(trainer.agent, episodes, seed, c.episode_steps, trainer.eval_env)
        self.out.reply(request_id, {"mean_return": finite(mean), "episodes": episodes,
                                    "seed": seed, "elapsed_s": elapsed_s(start_ms)})

    def get_weights(self, request_id, request):
        chunk = _int_arg(request, "chunk_bytes", CHUNK_BYTES, 16, _MAX_CHUNK_BYTES)
        params = self.learner().agent.actor.params
        blob = weights.pack(params)
        index = 0
        for offset in range(0, len(blob), chunk):
            text, crc = weights.encode_chunk(blob[offset:offset + chunk])
            self.out.event(request_id, "chunk", {"index": index, "offset": offset, "data": text,
                                                 "crc32": crc})
            index += 1
        self.out.reply(request_id, {"bytes": len(blob), "chunks": index,
                                    "crc32": weights.crc32(blob),
                                    "sizes": weights.layer_sizes(params)})

    def set_weights(self, request_id, request):
        """One chunk of a blob sent in order: ``offset``, ``bytes`` (the total), ``data``, ``crc32``.

        A chunk with a bad CRC is rejected and may be sent again; the last one applies the blob.
        """
        agent = self.learner().agent
        total = _int_arg(request, "bytes", None, 1, 2 * weights.blob_size(agent.actor.params, 64))
        offset = _int_arg(request, "offset", None, 0, total - 1)
        crc = _int_arg(request, "crc32", None, 0, 0xFFFFFFFF)
        data = request.get("data")
        if not isinstance(data, str):
            raise ProtocolError("data must be a base64 string", request_id)
        if offset == 0:
            self._upload = weights.Upload(total)
        elif self._upload is None or len(self._upload.buf) != total:
            raise ProtocolError("no upload of %d bytes in progress: start at offset 0" % total,
                                request_id)
        upload = self._upload
        complete = upload.add(offset, data, crc)
        if complete:
            self._upload = None
            weights.unpack_into(agent.actor.params, upload.buf)
            agent.actor_target.copy_from(agent.actor)
        self.out.reply(request_id, {"received": upload.received, "bytes": total,
                                    "applied": complete})

    def _weights_file(self, request, slots=()):
        """The request's ``file`` (default: the settings' weights file) if it is a weights name
        or one of ``slots``."""
        path = request.get("file") or self.weights_file
        if path != self.weights_file and path not in slots and (
                not isinstance(path, str) or not _weights_name(path)):
            raise ProtocolError("file must be %s%s or a name like actor.bin (letters, digits, _ "
                                "and -, then .bin; no directory%s), got %r"
                                % (self.weights_file, ", a checkpoint slot (%s)" % ", ".join(slots)
                                   if slots else "", "" if slots else "; not a checkpoint slot",
                                   path), request.get("id"))
        return path

    def save_weights(self, request_id, request):
        path = self._weights_file(request)
        size = weights.save(path, self.learner().agent.actor.params)
        self.out.reply(request_id, {"file": path, "bytes": size})

    def load_weights(self, request_id, request):
        path = self._weights_file(request)
        agent = self.learner().agent
        size = weights.load(path, agent.actor.params)
        agent.actor_target.copy_from(agent.actor)
        self.out.reply(request_id, {"file": path, "bytes": size})

    def files(self, request_id, request):
        from .checkpoint import SLOTS
        from .files import listing

        reply = listing((self.weights_file,) + SLOTS)
        reply["weights"] = self.weights_file
        self.out.reply(request_id, reply)

    def read_file(self, request_id, request):
        """The weights file, a checkpoint slot or a weights name, in chunks (no other file)."""
        from .checkpoint import SLOTS
        from .files import send

        path = self._weights_file(request, SLOTS)
        chunk = _int_arg(request, "chunk_bytes", CHUNK_BYTES, 16, _MAX_CHUNK_BYTES)
        sent = send(path, chunk, self.out, request_id)
        if sent is None:
            raise ProtocolError("no file %s on the board" % path, request_id)
        self.out.reply(request_id, {"file": path, "bytes": sent[0], "chunks": sent[1],
                                    "crc32": sent[2]})
