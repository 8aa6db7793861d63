"""`microrl train`: train on a board over its serial line, follow the run, keep what arrives.

1. Connect to the board's serve loop. If it does not serve, or the package files it reports
   (``files``: size and CRC-32 of each) differ from what `microrl deploy` would copy for this
   version, or it was deployed with another profile than ``--board``, deploy as `microrl deploy`
   does; otherwise skip the copy.
2. ``reset`` a fresh learner with the profile's config (``--resume``: then load the board's newest
   valid checkpoint and go on to ``--steps`` in all; without ckpt0.bin or ckpt1.bin on the board it
   is exit 2 before anything on the board changes), then ``train``, following its ``episode``
   events under a progress bar whose ETA comes from the board's own step rate (its elapsed time
   over its steps).
3. In ``--out``: run.json (config, board, every episode as it arrives, the board's step rate,
   status), rewritten atomically after each episode, and curve.png, redrawn every few seconds and
   at the end. When the run ends the board saves the actor to its weights file, for `microrl pull`.

Ctrl-C sends ``stop``: the board ends the run after its current step and replies ``"stopped":
true``; the files are saved and the exit status is 130, the board still serving. A link that drops
(a reset, an unplugged board, a board silent for ``--timeout-s``) leaves run.json with status
"link lost" and what arrived, exit 1.
"""

import json
import sys
import tempfile
import time
import zlib
from dataclasses import asdict
from pathlib import Path

from microrl_host.bench.report import write_atomic
from microrl_host.board import deploy
from microrl_host.board.boards import resolve_board
from microrl_host.board.link import BoardLink
from microrl_host.board.transport import BoardError, LinkError, PortUnavailable, SerialTransport
from microrl_host.board.vboard import profile_or_defaults
from microrl_host.mirror.config import TD3Config
from microrl_host.progress import Progress, log, rate_text

CONNECT_S = 5.0  # how long a serving board takes to answer hello
CHECKPOINT_EVERY = 1000  # steps between checkpoints unless the config or --checkpoint-every says
CURVE_INTERVAL_S = 5.0  # curve.png is redrawn at most this often while episodes arrive
SLOTS = ("ckpt0.bin", "ckpt1.bin")  # device/microrl/checkpoint.py
_SLOTS_SCRIPT = "import os, json\nr = {}\nfor n in %r:\n    try:\n        os.stat(n)\n" \
                "        r[n] = 1\n    except OSError:\n        r[n] = 0\nprint(json.dumps(r))\n"


class TrainError(Exception):
    """Bad input or a board that cannot train as asked: exit ``status`` with the message."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


def _first_line(error):
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class RunRecord:
    """run.json and curve.png in ``out_dir``, rewritten as results arrive."""

    def __init__(self, out_dir, doc):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.doc = dict(doc, status="training", episodes=[], steps_per_s=None,
                        files={"run": str(self.out_dir / "run.json"),
                               "curve": str(self.out_dir / "curve.png")})
        self._curve_at = None
        self.write()

    @property
    def episodes(self):
        return self.doc["episodes"]

    def add_episode(self, event):
        """Record one ``episode`` event; returns (steps done in this run, board steps per s)."""
        start = self.doc["start_step"]
        row = {"episode": event.get("episode"), "step": event.get("step"),
               "return": event.get("return"), "elapsed_s": event.get("elapsed_s")}
        self.episodes.append(row)
        done = row["step"] - start
        if row["elapsed_s"]:
            self.doc["steps_per_s"] = done / row["elapsed_s"]
        self.write()
        now = time.monotonic()
        if self._curve_at is None or now - self._curve_at >= CURVE_INTERVAL_S:
            self.draw()
        return done, self.doc["steps_per_s"]

    def write(self):
        write_atomic(self.out_dir / "run.json", json.dumps(self.doc, indent=1) + "\n")

    def draw(self):
        from microrl_host.sim import plots

        self._curve_at = time.monotonic()
        rows = [r for r in self.episodes if r["return"] is not None]
        tmp = self.out_dir / "curve.tmp.png"
        plots.plot_curve(tmp, self.doc["config"]["episode_steps"], [r["return"] for r in rows], [],
                         "TD3 on the board: %s, seed %d, %s" % (
                             self.doc["board"], self.doc["config"]["seed"], self.doc["status"]),
                         steps=[r["step"] for r in rows])
        tmp.replace(self.out_dir / "curve.png")

    def finish(self, status, **fields):
        self.doc.update(fields, status=status)
        self.write()
        self.draw()


def package_files(files):
    """{file name: [bytes, crc32]} of the package files among staged ``files``."""
    out = {}
    for local, remote in files:
        if "/microrl/" in remote:
            data = Path(local).read_bytes()
            out[Path(remote).name] = [len(data), zlib.crc32(data)]
    return out


def deploy_reason(hello, listing, profile, compiled, board_named):
    """Why the board needs a deploy (a short phrase), or None when its package is this one."""
    if hello is None:
        return "the board does not answer the serve protocol"
    if listing is None:
        return "its serve loop has no files command (an older microrl)"
    if board_named and hello.get("board") != profile.name:
        return "it was deployed with profile %s, not %s" % (hello.get("board"), profile.name)
    board_package = listing.get("package")
    if board_package is None:
        return None  # frozen into the firmware: nothing on the filesystem to replace
    march = None
    if compiled:
        march = deploy.mpy_target(hello["implementation"], (hello.get("mpy") or {}).get("raw"))
    with tempfile.TemporaryDirectory(prefix="microrl-train-") as tmp:
        settings = deploy.board_settings(profile)
        ours = package_files(deploy.stage(tmp, settings, march, compiled, boot=None))
    if board_package == ours:
        return None
    differ = sorted(n for n in set(ours) | set(board_package)
                    if ours.get(n) != board_package.get(n))
    return "%d package files differ from this version (%s%s)" % (
        len(differ), ", ".join(differ[:4]), ", ..." if len(differ) > 4 else "")


class Session:
    """The link to one board, opened and closed around deploys (which need the port)."""

    def __init__(self, port, timeout_s):
        self.port = port
        self.timeout_s = timeout_s
        self.link = None

    def open(self, connect_s=CONNECT_S):
        """(hello, files listing) of the serving board; (None, None) when it does not serve."""
        self.close()
        try:
            self.link = BoardLink(SerialTransport(self.port), timeout_s=self.timeout_s)
        except PortUnavailable as e:
            raise TrainError(str(e)) from None
        try:
            hello = self.link.connect(timeout_s=connect_s)
        except BoardError as e:
            if "busy: training" not in str(e):
                raise
            log("the board is still training an earlier run: stopping it")
            self.link.request("stop")
            hello = self.link.connect(timeout_s=connect_s)
        except LinkError:
            return None, None
        try:
            listing = self.link.files()
        except BoardError:
            listing = None
        return hello, listing

    def close(self):
        if self.link is not None:
            self.link.close()
            self.link = None


def learner_config(profile, overrides, steps, seed, checkpoint_every):
    """The whole config the board trains with: the profile's learner table, ``overrides``, the
    steps, the seed and checkpoint_every (default CHECKPOINT_EVERY unless the config sets it)."""
    learner = dict(profile.learner)
    learner.update(overrides or {})
    if steps is not None:
        learner["total_steps"] = steps
    if seed is not None:
        learner["seed"] = seed
    if checkpoint_every is not None:
        learner["checkpoint_every"] = checkpoint_every
    learner.setdefault("checkpoint_every", CHECKPOINT_EVERY)
    try:
        config = TD3Config(**learner)
    except (TypeError, ValueError) as e:
        raise TrainError("bad config for board profile %s: %s" % (profile.name, e)) from None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


def missing_slots(session, listing):
    """The checkpoint slots the board does not have (asked over mpremote when it does not
    serve)."""
    if listing is not None:
        return [n for n in SLOTS if listing["files"].get(n) is None]
    session.close()
    out = deploy.mpremote(session.port, "exec", _SLOTS_SCRIPT % (SLOTS,),
                          what="looking for the checkpoint slots")
    present = json.loads(out.strip().splitlines()[-1])
    return [n for n in SLOTS if not present.get(n)]


def follow(link, record, todo, bar, timeout_s):
    """Send ``train`` and record its episodes; returns (train reply, stopped by Ctrl-C)."""
    def on_event(event):
        if event.get("event") == "diverged":  # the board went back to a checkpoint (guard.py)
            record.doc.setdefault("divergences", []).append(
                {k: v for k, v in event.items() if k not in ("event", "id")})
            record.write()
            bar.write("the board's update at step %s met a NaN or an infinity (%s): it went back "
                      "to its checkpoint of step %s" % (event.get("step"), event.get("what"),
                                                        (event.get("restored") or {}).get("steps")))
            return
        if event.get("event") != "episode":
            return
        done, rate = record.add_episode(event)
        eta = (todo - done) / rate if rate else None
        bar.update(done, episode_return=event.get("return"), rate=rate, eta_s=eta)

    train_id = link.send("train", steps=todo)
    try:
        return link.wait_reply(train_id, "train", timeout_s, on_event), False
    except KeyboardInterrupt:
        bar.write("Ctrl-C: asking the board to stop training")
        link.send("stop")
        try:
            return link.wait_reply(train_id, "train", timeout_s, on_event), True
        except KeyboardInterrupt:
            raise TrainError("interrupted again while the board was stopping: it may still "
                             "train; `microrl train` stops an earlier run first", 130) from None


def train(args):
    """The whole command; returns the exit status."""
    profile = resolve_board(args.board) if args.board else None
    try:
        overrides = deploy.parse_config(args.config)
    except deploy.DeployError as e:
        raise TrainError(str(e)) from None
    if overrides is not None and not isinstance(overrides, dict):
        raise TrainError("--config must be a JSON object of TD3Config fields, got %r"
                         % (overrides,))
    if args.steps is not None and args.steps <= 0:
        raise TrainError("--steps must be a positive number of steps, got %d" % args.steps)
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise TrainError("--checkpoint-every must be >= 0, got %d" % args.checkpoint_every)
    session = Session(args.port or deploy.find_port(), args.timeout_s)
    try:
        hello, listing = session.open()
        if profile is None:
            named = (hello or {}).get("board")
            try:
                profile = profile_or_defaults(None if named == "default" else named)
            except ValueError:
                log("the board's profile %s is not in boards/: using the defaults" % named)
                profile = profile_or_defaults(None)
        config = learner_config(profile, overrides, args.steps, args.seed, args.checkpoint_every)
        if args.resume:
            missing = missing_slots(session, listing)
            if len(missing) == len(SLOTS):
                raise TrainError("--resume: no checkpoint on the board to resume from: %s are "
                                 "missing (a run checkpoints every checkpoint_every steps)"
                                 % " and ".join(missing))
        compiled = args.mpy or any(n.endswith(".mpy") for n in (listing or {}).get("package")
                                   or {})
        reason = deploy_reason(hello, listing, profile, compiled, args.board is not None)
        if reason is not None:
            log("deploying (%s)" % reason)
            session.close()
            deploy.deploy(session.port, profile, compiled=compiled, log=log, progress=True)
            hello, listing = session.open(connect_s=max(CONNECT_S, args.timeout_s))
            if hello is None:
                raise TrainError("the board does not answer after the deploy", 1)
        else:
            log("the board runs this version of microrl (profile %s): no deploy" % profile.name)
        return _run(session.link, hello, profile, config, args, reason)
    finally:
        session.close()


def _fields(reply):
    """A reply without the protocol's own fields."""
    return {k: v for k, v in reply.items() if k not in ("v", "id", "ok")}


def _run(link, hello, profile, config, args, deployed):
    try:
        reset = link.reset(config=config, resume=True if args.resume else None)
    except BoardError as e:
        raise TrainError(("cannot resume: %s" if args.resume else "cannot build the learner: %s")
                         % _first_line(e).split("failed on the board: ", 1)[-1]) from None
    resumed = reset.get("resumed")
    start = resumed["steps"] if resumed else 0
    target = config["total_steps"]
    todo = target - start
    if resumed:
        log("resumed from %s (checkpoint %d) at step %d%s" % (
            resumed["file"], resumed["seq"], start, "".join(
                "; skipped %s: %s" % (f, why) for f, why in resumed.get("skipped", []))))
    if todo <= 0:
        log("the run is already at step %d of %d: nothing to train" % (start, target))
        return 0
    out_dir = Path(args.out or Path("runs") / "board" / profile.name)
    record = RunRecord(out_dir, {
        "port": link.transport.port, "board": profile.name, "hello": _fields(hello),
        "config": reset["config"], "deployed": deployed, "resumed": resumed, "start_step": start,
        "target_step": target, "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    try:
        with Progress(todo, "train %s" % profile.name, unit="step", own_eta=True) as bar:
            reply, stopped = follow(link, record, todo, bar, args.timeout_s)
    except TrainError as e:
        record.finish("interrupted", message=str(e))
        raise
    except BoardError as e:
        record.finish("error", message=_first_line(e))
        raise TrainError("training failed on the board: %s (%d episodes kept in %s)"
                         % (_first_line(e), len(record.episodes), out_dir), 1) from None
    except LinkError as e:
        step = record.episodes[-1]["step"] if record.episodes else start
        record.finish("link lost", message=_first_line(e))
        raise TrainError("link lost after step %d: %s; the %d episodes received are in %s"
                         % (step, _first_line(e), len(record.episodes), out_dir), 1) from None
    fields = {"steps_per_s": reply.get("steps_per_s"), "elapsed_s": reply.get("elapsed_s"),
              "total_steps": reply.get("total_steps"), "episode_count": reply.get("episodes"),
              "last_return": reply.get("last_return")}
    try:
        fields["weights"] = _fields(link.save_weights())
    except BoardError as e:
        log("the board could not save the actor: %s" % _first_line(e))
    record.finish("stopped" if stopped else "complete", **fields)
    rate = fields["steps_per_s"]
    last = reply.get("last_return")
    summary = ("%d steps at %s steps/s on the board, last episode return %s; %d episodes in %s"
               % (reply["steps"], rate_text(rate) if rate else "?",
                  "%.1f" % last if last is not None else "-", len(record.episodes), out_dir))
    if args.json:
        print(json.dumps(record.doc))
    if stopped:
        print("stopped: the board stopped training at step %d and still serves; %s"
              % (reply["total_steps"], summary), file=sys.stderr)
        return 130
    print("trained %s; `microrl pull --port %s` fetches the actor" % (summary, link.transport.port),
          file=sys.stderr)
    return 0


def add_arguments(parser):
    parser.add_argument("--port", default=None, help="serial port (default: the first USB board)")
    parser.add_argument("--board", default=None,
                        help="board profile: a name in boards/ or a .toml file (default: the "
                             "profile the board was deployed with, else the defaults)")
    parser.add_argument("--steps", type=int, default=None,
                        help="environment steps of the run (default: the config's total_steps); "
                             "with --resume, the run's total, counted from its start")
    parser.add_argument("--resume", action="store_true",
                        help="go on from the board's newest valid checkpoint")
    parser.add_argument("--seed", type=int, default=None, help="seed of the learner")
    parser.add_argument("--config", default=None,
                        help="JSON object of TD3Config overrides on top of the board profile")
    parser.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                        help="steps between checkpoints on the board (default: the config's, "
                             "else %d; 0: none)" % CHECKPOINT_EVERY)
    parser.add_argument("--mpy", action="store_true",
                        help="deploy bytecode (as `microrl deploy --mpy`) when a deploy is needed")
    parser.add_argument("--out", default=None,
                        help="output directory (default runs/board/PROFILE)")
    parser.add_argument("--timeout-s", type=float, default=300.0,
                        help="longest the board may stay silent, in seconds (default 300: an "
                             "episode on a slow board)")
    parser.add_argument("--json", action="store_true", help="print run.json on stdout")


def run(args):
    try:
        return train(args)
    except TrainError as e:
        print("microrl train: %s" % e, file=sys.stderr)
        return e.status
    except (ValueError, deploy.DeployError) as e:
        print("microrl train: %s" % _first_line(e), file=sys.stderr)
        return 2 if isinstance(e, ValueError) else 1
    except LinkError as e:
        print("microrl train: %s" % _first_line(e), file=sys.stderr)
        return 1
