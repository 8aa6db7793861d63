"""`microrl bench`: run a benchmark suite on a board over its serial line and collect the results.

``--port P`` talks to a board already serving (after ``microrl deploy``); ``--virtual B`` starts a
virtual board with profile B, deploys to it with mpremote and benchmarks it: the same code path, only
the transport differs. The suite starts from a fresh learner (a ``reset``, with the ``--config``
overrides) and the update benchmarks train it. Results go to ``--out`` (see report.py); on a QEMU
board (``microrl vboard --qemu``) they are in instructions instead of microseconds. If the board
resets or stops answering mid-run, every result received before stays in results.json and the run
ends with a clear error (exit status 2).
"""

import json
import sys
import time
from pathlib import Path

from microrl_host.bench.report import ResultsWriter, board_summary, readable
from microrl_host.board import deploy
from microrl_host.board.boards import resolve_board
from microrl_host.board.link import BoardLink
from microrl_host.board.qemu import instructions_per_tick, machine_of
from microrl_host.board.transport import (BoardReset, BoardTimeout, LinkError, SerialTransport,
                                          VirtualTransport)
from microrl_host.board.vboard import VirtualBoard, VirtualBoardError
from microrl_host.progress import Progress

BENCHMARKS = ("actor_forward", "td3_update", "critic_update", "full_update", "trainer_step",
              "env_step", "replay_sample")
SUITES = {
    "all": BENCHMARKS,
    "inference": ("actor_forward", "env_step"),
    "learn": ("td3_update", "replay_sample"),
    "update": ("critic_update", "full_update", "trainer_step"),
}


def suite_names(suite):
    """Benchmark names of a suite, or of a comma-separated list of benchmark names."""
    if suite in SUITES:
        return SUITES[suite]
    names = tuple(n.strip() for n in suite.split(",") if n.strip())
    unknown = [n for n in names if n not in BENCHMARKS]
    if not names or unknown:
        raise ValueError("unknown suite or benchmark %r; suites: %s; benchmarks: %s"
                         % (suite, ", ".join(SUITES), ", ".join(BENCHMARKS)))
    return names


def run_suite(link, names, repeat, out_dir, board, label="board", on_result=None,
              timeout_s=None, log=None):
    """Run ``names`` on the board; returns the results document. A LinkError (reset, timeout,
    error reply) is recorded in results.json with the results so far, then raised again."""
    per_tick = instructions_per_tick(machine_of(board))
    writer = ResultsWriter(out_dir, board, label=label, suite=list(names), repeat=repeat,
                           started=time.strftime("%Y-%m-%dT%H:%M:%S"),
                           instructions_per_tick=per_tick)
    try:
        for i, name in enumerate(names):
            started = time.monotonic()
            result = link.bench(name, repeat=repeat, timeout_s=timeout_s)
            row = writer.add(result)
            if log is not None:
                unit = "instructions" if per_tick else "us"
                median, low, high = (readable(row[k + "_" + unit], unit)
                                     for k in ("median", "min", "max"))
                alloc = result["alloc_bytes"]
                log("[%d/%d] %-14s median %s (min %s, max %s)%s, %s, %s"
                    % (i + 1, len(names), name, median, low, high,
                       "" if unit == "us" else " " + unit,
                       "heap not measurable" if alloc is None else "%d heap bytes per run" % alloc,
                       readable(1e6 * (time.monotonic() - started))))
            if on_result is not None:
                on_result(result)
    except BoardReset as e:
        writer.finish("reset", str(e))
        raise
    except BoardTimeout as e:
        writer.finish("timeout", str(e))
        raise
    except LinkError as e:
        writer.finish("error", str(e))
        raise
    writer.finish()
    return writer.doc


def add_arguments(parser):
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--port", default=None, help="serial port of a serving board")
    where.add_argument("--virtual", metavar="B", default=None,
                       help="start a virtual board with profile B, deploy to it and benchmark it")
    parser.add_argument("--board", default=None,
                        help="with --port: the board's profile, a name in boards/ or a .toml "
                             "file, to name the results by (default: the profile the board says "
                             "it was deployed with)")
    parser.add_argument("--micropython", default=None, help="interpreter of the virtual board")
    parser.add_argument("--mpy", action="store_true", help="deploy .mpy files (with --virtual)")
    parser.add_argument("--mpy-cross", default=None, metavar="PATH",
                        help="with --mpy on a CircuitPython interpreter: CircuitPython's mpy-cross")
    parser.add_argument("--config", default=None,
                        help="JSON object of TD3Config overrides for the learner benchmarked")
    parser.add_argument("--suite", default="all",
                        help="all, inference, learn, or benchmark names joined by commas")
    parser.add_argument("--repeat", type=int, default=20, help="runs per benchmark (default 20)")
    parser.add_argument("--out", default=None,
                        help="output directory (default bench/results/PROFILE, the board's "
                             "profile)")
    parser.add_argument("--timeout-s", type=float, default=60.0,
                        help="longest the board may stay silent, in seconds (default 60)")
    parser.add_argument("--json", action="store_true", help="print results.json to stdout")


def _log(text):
    print(text, file=sys.stderr, flush=True)


def run(args):
    try:
        names = suite_names(args.suite)
        config = json.loads(args.config) if args.config else None
        if args.board and args.virtual:
            raise ValueError("--board goes with --port; --virtual B names the profile itself")
        profile = resolve_board(args.virtual or args.board) if args.virtual or args.board else None
    except ValueError as e:
        _log("bench: %s" % e)
        return 1
    board = out_dir = None  # out_dir is set once the suite starts writing results
    try:
        if args.virtual:
            board = VirtualBoard.from_profile(profile, args.micropython).start()
            _log("virtual board %s on %s" % (profile.name, board.port))
            deploy.deploy(board.port, profile, compiled=args.mpy, config=config, log=_log,
                          mpy_cross=args.mpy_cross)
            transport = VirtualTransport(board=board)
        else:
            transport = SerialTransport(args.port or deploy.find_port())
        with BoardLink(transport, timeout_s=args.timeout_s) as link:
            link.connect()
            link.reset(config=None if args.virtual else config)  # a fresh learner to measure
            hello = link.hello()
            label = profile.name if profile else hello.get("board") or "board"
            out_dir = Path(args.out or Path("bench/results") / label)
            _log("benchmarking %s: %s" % (label, board_summary(hello)))
            with Progress(len(names), "bench %s" % label, unit="benchmark") as bar:
                doc = run_suite(link, names, args.repeat, out_dir, hello, label=label,
                                timeout_s=args.timeout_s, log=bar.write,
                                on_result=lambda result: bar.advance())
    except (LinkError, deploy.DeployError, VirtualBoardError) as e:
        if out_dir is None:
            _log("bench failed before any benchmark ran (nothing written): %s" % e)
            return 1
        _log("bench stopped: %s\nresults received before are in %s" % (e, out_dir / "results.json"))
        return 2 if isinstance(e, (BoardReset, BoardTimeout)) else 1
    finally:
        if board is not None:
            board.stop()
    _log("wrote %s/results.{json,csv,md,png}" % out_dir)
    if args.json:
        print(json.dumps(doc, indent=1))
    return 0
