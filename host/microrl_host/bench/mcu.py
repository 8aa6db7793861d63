"""`microrl bench-mcu`: instructions and heap of every board profile's learner on the QEMU core that
stands for its chip, with MicroPython's QEMU firmware (``firmware/build_qemu.sh`` builds it).

For each profile in boards/ but unix and each backend (pure Python, ulab), one QEMU board at a time:
the firmware ``DIR/<core>-<backend>-<heap_bytes>.elf`` (the profile's heap) serves with the
profile's learner; ``hello`` names the firmware, ``reset`` builds the learner (its reply holds the
heap free after construction), then the device benchmarks run (device/microrl/bench.py):
``actor_forward``, ``env_step``, ``critic_update``, ``full_update`` with ``--repeat`` runs each,
reported as the median, and ``trainer_step`` with ``--repeat`` x policy_delay runs, reported as
the mean (its steps alternate between critic-only and full updates). A TD3 update costs, on average,
((policy_delay - 1) x critic + full) / policy_delay. Instructions are ticks x the machine's
instructions per tick (qemu.py). Bytes allocated per update are counted with collection disabled.
A MemoryError in construction or in a benchmark is a result, recorded as such.

Each profile names the QEMU core that stands for its chip (``qemu_core``): m0 runs ARMv6-M, the
RP2040's instruction set, with soft float as on the RP2040; for the chips with a single-precision
FPU (the RP2350's Cortex-M33, the STM32F405's Cortex-M4F, the ESP32s' Xtensa LX6 and LX7) the
nearest QEMU core is the M7 built with hardware single-precision float.

Writes OUT/mcu.json (every device reply and the summary) and OUT/mcu.md after each board.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

from microrl_host.bench.report import write_atomic
from microrl_host.board import deploy
from microrl_host.board.boards import BOARDS_DIR, load_profile, profile_names
from microrl_host.board.link import BoardLink
from microrl_host.board.qemu import (CORES as MACHINES_OF_CORES, QemuBoard, QemuBoardError,
                                     ticks_to_instructions)
from microrl_host.board.transport import BoardError, LinkError, SerialTransport

BACKENDS = ("pure", "ulab")
NAMES = ("actor_forward", "env_step", "critic_update", "full_update", "trainer_step")
DEFAULT_TIMEOUT_S = 1800.0  # the longest a board may stay silent: one benchmark's runs
_BUILD = "firmware/build_qemu.sh"


class BenchSetupError(Exception):
    """A bad argument or a missing firmware: the message says what and how to fix it."""


def firmware_name(core, backend, heap_bytes):
    return "%s-%s-%d.elf" % (core, backend, heap_bytes)


def plan(boards=None, backends=BACKENDS):
    """[(profile, core, backend, firmware file name)] for ``boards`` (default: all but unix)."""
    names = boards or [n for n in profile_names() if n != "unix"]
    entries = []
    for name in names:
        try:
            profile = load_profile(name)
        except ValueError as e:
            raise BenchSetupError(str(e)) from None
        core = profile.qemu_core  # the QEMU core that stands for the board's chip
        if not core:
            raise BenchSetupError("board %s has no QEMU core: give it qemu_core (one of %s) in "
                                  "boards/%s.toml" % (name, ", ".join(MACHINES_OF_CORES), name))
        for backend in backends:
            if backend not in BACKENDS:
                raise BenchSetupError("unknown backend %r; known: %s"
                                      % (backend, ", ".join(BACKENDS)))
            entries.append((profile, core, backend,
                            firmware_name(core, backend, profile.heap_bytes)))
    return entries


def check_firmware_dir(firmware_dir, entries):
    """BenchSetupError naming the missing directory or files, and the command that builds them."""
    firmware_dir = Path(firmware_dir)
    build = "%s MICROPYTHON_DIR %s ULAB_DIR" % (_BUILD, firmware_dir)
    if not firmware_dir.is_dir():
        raise BenchSetupError("firmware directory %s does not exist: build the firmware with %s "
                              "(your micropython and micropython-ulab checkouts)"
                              % (firmware_dir, build))
    missing = [(profile, core, backend, name) for profile, core, backend, name in entries
               if not (firmware_dir / name).is_file()]
    if missing:
        heaps = {}
        for profile, core, _, _ in missing:
            heaps.setdefault(core, set()).add(profile.heap_bytes)
        spec = " ".join("%s=%s" % (core, ",".join(str(h) for h in sorted(heaps[core])))
                        for core in sorted(heaps))
        raise BenchSetupError("%s lacks %s; build them with HEAPS=\"%s\" %s (your micropython and "
                              "micropython-ulab checkouts)" % (
                                  firmware_dir, ", ".join("%s (%s, %s)" % (name, p.name, backend)
                                                          for p, _, backend, name in missing),
                                  spec, build))


# On the board

def _failure(error):
    """A BoardError as the result it stands for."""
    reply = error.reply or {}
    return {"ok": False, "type": reply.get("type"), "error": reply.get("error") or str(error)}


def _kept(reply):
    return {k: v for k, v in reply.items() if k not in ("v", "id", "commands")}


def collect(link, learner, repeat, backend=None, log=None, replies=None):
    """hello, reset (the learner's construction) and the benchmarks on a serving board: the replies,
    added to ``replies`` as they come (so a board that stops answering keeps the earlier ones).

    An error reply (a MemoryError, typically) is kept as ``{"ok": False, "type", "error"}``; after
    one in construction no benchmark runs. ValueError when the firmware's backend is not
    ``backend``.
    """
    replies = {} if replies is None else replies
    replies["hello"] = _kept(link.connect())
    found = replies["hello"].get("backend")
    if backend is not None and (found == "ulab") != (backend == "ulab"):
        raise ValueError("the firmware reports backend %s, expected %s" % (found, backend))
    try:
        replies["reset"] = _kept(link.reset(config=learner))
    except BoardError as e:
        replies["reset"] = _failure(e)
        return replies
    delay = replies["reset"]["config"]["policy_delay"]
    for name in NAMES:
        runs = repeat * delay if name == "trainer_step" else repeat
        started = time.monotonic()
        try:
            replies[name] = _kept(link.bench(name, repeat=runs))
        except BoardError as e:
            replies[name] = _failure(e)
        if log is not None:
            log("  %-14s %s, %.1f s" % (name, _said(replies[name]), time.monotonic() - started))
    return replies


def _said(reply):
    if not reply.get("ok", True):
        return reply["error"]
    if reply.get("alloc_bytes") is not None:
        alloc = "%d bytes allocated" % reply["alloc_bytes"]
    else:
        alloc = "allocation %s" % reply.get("alloc_error")
    return "median %s ticks, mean %s, %s" % (reply.get("median_us"), reply.get("mean_us"), alloc)


# Summary and report

def summarize(run):
    """Instructions and bytes of one board run, from its replies."""
    replies = run.get("replies") or {}
    per_tick = run["instructions_per_tick"]
    hello = replies.get("hello") or {}
    reset = replies.get("reset")
    summary = {"heap_total_bytes": None, "construction_error": None,
               "heap_free_after_construction_bytes": None, "benchmarks": {},
               "update_mean_instructions": None}
    if hello.get("heap_free_bytes") is not None:
        summary["heap_total_bytes"] = hello["heap_free_bytes"] + hello["heap_alloc_bytes"]
    if reset is None:
        return summary
    if not reset.get("ok", True):
        summary["construction_error"] = reset["error"]
        return summary
    summary["heap_free_after_construction_bytes"] = reset["heap_free_bytes"]
    for name in NAMES:
        reply = replies.get(name)
        if reply is None:
            continue
        if not reply.get("ok", True):
            summary["benchmarks"][name] = {"error": reply["error"], "type": reply.get("type")}
            continue
        ticks = reply["mean_us"] if name == "trainer_step" else reply["median_us"]
        summary["benchmarks"][name] = {
            "instructions": ticks_to_instructions(ticks, per_tick),
            "min_instructions": ticks_to_instructions(reply["min_us"], per_tick),
            "max_instructions": ticks_to_instructions(reply["max_us"], per_tick),
            "runs": reply["repeat"], "alloc_bytes": reply["alloc_bytes"],
            "alloc_free_bytes": reply.get("alloc_free_bytes"),
            "alloc_error": reply.get("alloc_error")}
    critic = summary["benchmarks"].get("critic_update", {}).get("instructions")
    full = summary["benchmarks"].get("full_update", {}).get("instructions")
    if critic is not None and full is not None:
        delay = reset["config"]["policy_delay"]
        summary["policy_delay"] = delay
        summary["update_mean_instructions"] = int(round(((delay - 1) * critic + full) / delay))
    return summary


def count(n):
    """An instruction count for people: 3 significant digits, k, M or G."""
    if n is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return "%s %s" % (("%.3g" % (n / scale)), suffix)
    return str(n)


def _kb(n):
    if n is None:
        return "-"
    return "%.1f KB" % (n / 1024) if n < 1024 * 1024 else "%.2f MB" % (n / 1024 / 1024)


def _cell(bench):
    if bench is None:
        return "-"
    if "error" in bench:
        return bench.get("type") or "error"
    return count(bench["instructions"])


def _alloc(bench):
    if bench is None or "error" in bench:
        return "-"
    if bench["alloc_bytes"] is None:
        return "> %s" % _kb(bench["alloc_free_bytes"]) if bench.get("alloc_free_bytes") else "n/m"
    return _kb(bench["alloc_bytes"])


def markdown(doc):
    lines = ["# microrl on microcontroller cores (QEMU)", "",
             "- Instructions per call on QEMU (`-icount shift=0`), median of %d runs; "
             "Trainer.step: mean of %d x policy_delay runs (its steps alternate between "
             "critic-only and full updates); update: ((policy_delay - 1) x critic + full) / "
             "policy_delay, policy_delay 2 in every profile." % (doc["repeat"], doc["repeat"]),
             "- heap: the firmware's; free: after the learner's construction; allocated per "
             "update: by one critic and one full update with collection disabled (> F: more "
             "than the F free, so the update needs collections).",
             "- m0: microbit machine, Cortex-M0, soft float; m7: mps2-an500, Cortex-M7, "
             "single-precision FPU. Device code %s." % (doc.get("device") or "unknown"), "",
             "| board | core | backend | heap | free after construction | critic update | "
             "full update | update | Trainer.step | env step | actor forward | allocated per "
             "update (critic, full) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for run in doc["runs"]:
        s = run.get("summary") or {}
        head = "| %s | %s | %s | %s |" % (run["board"], run["core"], run["backend"],
                                          _kb(run["heap_bytes"]))
        if run.get("error"):
            lines.append(head + " error | - | - | - | - | - | - | - |")
            notes.append("%s, %s: %s" % (run["board"], run["backend"],
                                         run["error"].splitlines()[0]))
            continue
        if s.get("construction_error"):
            lines.append(head + " MemoryError in construction | - | - | - | - | - | - | - |")
            notes.append("%s, %s: %s" % (run["board"], run["backend"], s["construction_error"]))
            continue
        b = s["benchmarks"]
        lines.append(head + " %s | %s | %s | %s | %s | %s | %s | %s, %s |" % (
            _kb(s["heap_free_after_construction_bytes"]), _cell(b.get("critic_update")),
            _cell(b.get("full_update")), count(s.get("update_mean_instructions")),
            _cell(b.get("trainer_step")), _cell(b.get("env_step")),
            _cell(b.get("actor_forward")), _alloc(b.get("critic_update")),
            _alloc(b.get("full_update"))))
        for name, bench in b.items():
            if "error" in bench:
                notes.append("%s, %s, %s: %s" % (run["board"], run["backend"], name,
                                                 bench["error"]))
    if notes:
        lines += [""] + ["- %s" % note for note in notes]
    return "\n".join(lines) + "\n"


def write(out_dir, doc):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "mcu.json", json.dumps(doc, indent=1) + "\n")
    write_atomic(out_dir / "mcu.md", markdown(doc))


# One board, then all

def bench_one(profile, core, backend, firmware, repeat, qemu_binary=None,
              timeout_s=DEFAULT_TIMEOUT_S, log=None):
    """One profile on one firmware in its own QEMU: the run's record (a LinkError is recorded)."""
    machine = MACHINES_OF_CORES[core]
    board = QemuBoard(machine, firmware, qemu_binary)
    run = {"board": profile.name, "core": core, "machine": machine, "backend": backend,
           "firmware": Path(firmware).name, "heap_bytes": profile.heap_bytes,
           "instructions_per_tick": board.instructions_per_tick, "learner": profile.learner,
           "replies": {}, "error": None}
    started = time.monotonic()
    try:
        board.start()
        board.serve({"board": profile.name, "config": dict(profile.learner)})
        with BoardLink(SerialTransport(board.port), timeout_s=timeout_s) as link:
            collect(link, dict(profile.learner), repeat, backend, log, run["replies"])
    except (LinkError, deploy.DeployError, QemuBoardError, ValueError) as e:
        run["error"] = "%s: %s" % (type(e).__name__, str(e).strip())
    finally:
        board.stop()
    run["wall_s"] = round(time.monotonic() - started, 1)
    run["summary"] = summarize(run)
    return run


def _device_revision():
    """The checkout's commit of device/, with "+changes" when device/ differs from it."""
    root = BOARDS_DIR.parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h", "--",
                                 "device"], capture_output=True, text=True, timeout=10).stdout
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "device"],
                               capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (commit.strip() + ("+changes" if dirty.strip() else "")) or None


def add_arguments(parser):
    parser.add_argument("--firmware-dir", required=True, metavar="DIR",
                        help="directory of <core>-<backend>-<heap>.elf (firmware/build_qemu.sh)")
    parser.add_argument("--out", default="bench/results", help="output directory")
    parser.add_argument("--boards", nargs="*", default=None,
                        help="profiles (default: every profile but unix)")
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=BACKENDS,
                        help="firmware backends (default: pure ulab)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per benchmark, the median reported (default 3)")
    parser.add_argument("--qemu-binary", default=None,
                        help="QEMU to run (default $QEMU, else qemu-system-arm on PATH)")
    parser.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S,
                        help="longest a board may stay silent, in seconds (default %.0f)"
                             % DEFAULT_TIMEOUT_S)


def _log(text):
    print(text, file=sys.stderr, flush=True)


def run(args):
    try:
        if args.repeat < 1:
            raise BenchSetupError("--repeat must be at least 1, got %d" % args.repeat)
        entries = plan(args.boards, args.backends)
        check_firmware_dir(args.firmware_dir, entries)
        for _, core, _, name in entries:  # bad firmware or QEMU: before anything runs
            QemuBoard(MACHINES_OF_CORES[core], Path(args.firmware_dir) / name,
                      args.qemu_binary).check()
    except (BenchSetupError, QemuBoardError) as e:
        _log("bench-mcu: %s" % e)
        return 2
    doc = {"repeat": args.repeat, "device": _device_revision(),
           "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "runs": []}
    failed = 0
    for i, (profile, core, backend, name) in enumerate(entries):
        _log("[%d/%d] %s on %s, %s (%s)" % (i + 1, len(entries), profile.name, core, backend, name))
        result = bench_one(profile, core, backend, Path(args.firmware_dir) / name, args.repeat,
                           args.qemu_binary, args.timeout_s, _log)
        if result["error"]:
            failed += 1
            _log("  failed: %s" % result["error"])
        doc["runs"].append(result)
        write(args.out, doc)
    print(markdown(doc))
    _log("wrote %s/mcu.json and mcu.md" % args.out)
    return 1 if failed else 0
