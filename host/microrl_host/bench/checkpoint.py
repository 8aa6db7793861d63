"""`microrl bench-checkpoint`: the size of a checkpoint slot file and the instructions of a save,
a scan and a load, for every board profile's learner on the QEMU core that stands for its chip.

For each profile with a ``qemu_core``, in its own QEMU board, the firmware
``DIR/<core>-<firmware>-<heap_bytes>.elf`` (bench-mcu's: the ulab firmware for the ulab backend,
the default; the pure one for ``--backend pure`` or ``viper``; the backend forced) runs
ckpt_script.py over the raw REPL: the profile's learner is built and trained
``learning_starts + --train-steps`` steps (so that the networks, the Adam moments and the buffer have
been updated), then ``Checkpointer.save()``, ``scan()`` and ``load()`` run ``--repeat`` times each,
state only and with the replay buffer (``checkpoint_replay``), the median reported. ``load()``
includes its ``scan()`` of both slots (each read whole and its CRC-32 checked) and then reads the
newest slot again. Instructions are ticks x the machine's instructions per tick (qemu.py).

The firmware has no writable filesystem, so the script mounts a RAM filesystem: the figure is the
CPU work of a save (packing the counters, CRC-32 over the payload, handing the bytes to the
filesystem); a board's flash write (erase and program) comes on top of it.

Profiles without a QEMU core (unix) run the same script on the desktop micropython
(``$MICROPYTHON`` or the venv's), for their slot sizes; its times are the desktop's microseconds.

Writes OUT/checkpoint.json (every device result and the summary) and OUT/checkpoint.md.
"""

import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from microrl_host.bench import mcu
from microrl_host.bench.ckpt_script import script
from microrl_host.bench.mcu import BenchSetupError, count
from microrl_host.bench.report import write_atomic
from microrl_host.board import deploy
from microrl_host.board.boards import load_profile, profile_names
from microrl_host.board.qemu import (CORES as MACHINES_OF_CORES, QemuBoard, QemuBoardError,
                                     ticks_to_instructions)
from microrl_host.board.vboard import VirtualBoardError, default_micropython
from microrl_host.mirror.config import TD3Config
from microrl_host.progress import log

DEFAULT_TIMEOUT_S = 1800.0  # the longest the script may run on one board
MODES = ("state", "replay")  # state only; with the replay buffer
CALLS = ("save", "scan", "load")


def train_steps(learner, past):
    """Steps trained before the checkpoint: ``past`` beyond the learner's warm-up."""
    return TD3Config.from_dict(learner).learning_starts + past


def _result(stdout):
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ValueError("the board printed no result: %s" % (stdout.strip()[-300:] or "nothing"))


def bench_qemu(job, firmware, past, repeat, qemu_binary=None, timeout_s=DEFAULT_TIMEOUT_S):
    """One profile's checkpoint on its QEMU firmware: the run's record (an error is recorded)."""
    backend = mcu.DEVICE_BACKEND[job.backend]

    def body(board, run):
        text = script(job.learner, train_steps(job.learner, past), repeat, backend=backend)
        out = deploy.mpremote(board.port, "exec", text, timeout_s=timeout_s,
                              what="the checkpoint benchmark")
        run["result"] = _result(out)
        found = run["result"].get("backend")
        if found != backend:
            raise ValueError("the firmware runs backend %s, expected %s" % (found, backend))

    run = mcu.qemu_run(job.name, job.learner, job.heap_bytes, job.core, job.backend, firmware,
                       qemu_binary, body, result=None)
    run["summary"] = summarize(run)
    return run


def bench_desktop(profile, past, repeat, micropython=None, timeout_s=DEFAULT_TIMEOUT_S,
                  heap_bytes=None):
    """``profile``'s checkpoint on the desktop micropython (pure-Python backend, the profile's
    float_bits, its heap unless ``heap_bytes``: the desktop's objects are larger than a 32-bit
    board's), the RAM filesystem at /ram: the run's record."""
    learner = dict(profile.learner)
    heap_bytes = heap_bytes or profile.heap_bytes
    run = {"board": profile.name, "core": None, "machine": "desktop micropython",
           "backend": "pure", "firmware": None, "heap_bytes": heap_bytes,
           "instructions_per_tick": None, "learner": learner, "result": None, "error": None}
    device = Path(__file__).resolve().parents[3] / "device"
    text = "import sys\nsys.path.insert(0, %r)\n" % str(device) + script(
        learner, train_steps(learner, past), repeat, "/ram", "python")
    env = dict(os.environ, MICRORL_FLOAT_BITS=str(profile.float_bits))
    env.pop("MICRORL_BACKEND", None)
    started = time.monotonic()
    try:
        cmd = [micropython or default_micropython(), "-X", "heapsize=%d" % heap_bytes,
               "-c", text]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        if proc.returncode != 0:
            raise ValueError("micropython exit %d: %s" % (
                proc.returncode, (proc.stderr or proc.stdout).strip()[-300:]))
        run["result"] = _result(proc.stdout)
    except (OSError, subprocess.TimeoutExpired, VirtualBoardError, ValueError) as e:
        run["error"] = "%s: %s" % (type(e).__name__, str(e).strip())
    run["wall_s"] = round(time.monotonic() - started, 1)
    run["summary"] = summarize(run)
    return run


# Summary and report

def summarize(run):
    """Per mode: slot bytes and, per call, the median instructions (or, off QEMU, microseconds)."""
    result = run.get("result") or {}
    per_tick = run["instructions_per_tick"]
    summary = {"error": run.get("error") or result.get("error"),
               "critic_updates": result.get("critic_updates")}
    for mode in MODES:
        got = result.get(mode)
        if got is None:
            continue
        entry = {"file_bytes": got["file_bytes"], "error": got.get("error"),
                 "same_state": got.get("same_state")}
        for call in CALLS:
            ticks = got.get(call + "_us")
            if not ticks:
                continue
            median = statistics.median(ticks)
            if per_tick is None:
                entry[call + "_us"] = median
            else:
                entry[call + "_instructions"] = ticks_to_instructions(median, per_tick)
                entry[call + "_spread_instructions"] = ticks_to_instructions(
                    max(ticks) - min(ticks), per_tick)
        summary[mode] = entry
    return summary


def _bytes(n):
    return "-" if n is None else "{:,}".format(n).replace(",", " ")


def _ms(summary, mode):
    us = (summary.get(mode) or {}).get("save_us")
    return "-" if us is None else "%.1f ms" % (us / 1000)


def _row(run):
    s = run["summary"]
    where = ("%s, %s" % (run["core"], run["firmware"]) if run["core"]
             else run["machine"] + " (no QEMU core)")
    cells = [run["board"], where]
    for mode in MODES:
        entry = s.get(mode) or {}
        cells.append(_bytes(entry.get("file_bytes")))
        for call in CALLS:
            if entry.get("error"):
                cells.append(entry["error"].split(":")[0])
            else:
                cells.append(count(entry.get(call + "_instructions")))
    return "| %s |" % " | ".join(cells)


def table(doc):
    """The per-profile markdown table (checkpoint.md's, and docs/CHECKPOINTS.md's)."""
    lines = ["| board | QEMU core, firmware | state only: bytes | save | scan | load | "
             "with replay: bytes | save | scan | load |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for run in doc["runs"]:
        lines.append(_row(run))
        error = run["summary"].get("error")
        if error:
            notes.append("%s: %s" % (run["board"], error))
        elif run["instructions_per_tick"] is None:
            notes.append("%s, on the %s: save %s, with replay %s (the desktop's time)" % (
                run["board"], run["machine"], _ms(run["summary"], "state"),
                _ms(run["summary"], "replay")))
        for mode in MODES:
            entry = run["summary"].get(mode) or {}
            if entry.get("same_state") is False:
                notes.append("%s, %s: a load did not give back the saved state" % (
                    run["board"], mode))
    return "\n".join(lines + [""] + ["- %s" % n for n in notes] if notes else lines) + "\n"


def markdown(doc):
    return "\n".join([
        "# Checkpoint size and cost per board profile", "",
        "- Bytes: one slot file (24-byte header and payload), state only and with the replay "
        "buffer (checkpoint_replay).",
        "- save, scan, load: instructions per call on QEMU (`-icount shift=0`), median of %d; "
        "the learner trained %d steps past learning_starts first. load includes its scan of "
        "both slots (each read whole, CRC-32 checked), then reads the newest again." % (
            doc["repeat"], doc["train_steps_past"]),
        "- The firmware has no writable filesystem: a RAM filesystem stands in, so the figures "
        "are the CPU work of a save (packing, CRC-32 over the payload, handing the bytes to the "
        "filesystem); a board's flash write comes on top.",
        "- Backend %s; device code %s." % (doc["backend"], doc.get("device") or "unknown"), "",
        table(doc)])


def write(out_dir, doc):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "checkpoint.json", json.dumps(doc, indent=1) + "\n")
    write_atomic(out_dir / "checkpoint.md", markdown(doc))


# The command

def add_arguments(parser):
    mcu.add_firmware_arguments(parser)
    parser.add_argument("--out", default="bench/results", help="output directory")
    parser.add_argument("--boards", nargs="*", default=None,
                        help="profiles (default: every profile; those without a QEMU core run "
                             "on the desktop micropython)")
    # not vfp: a checkpoint computes no product, so it would measure the ulab backend again
    parser.add_argument("--backend", default="ulab", choices=("ulab", "pure", "viper"),
                        help="ulab (the profiles', default), pure or viper (both on the pure "
                             "firmware)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="calls of save, scan and load each, the median reported (default 3)")
    parser.add_argument("--train-steps", type=int, default=10,
                        help="steps trained past learning_starts before the first save "
                             "(default 10)")
    parser.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S,
                        help="longest one board may take, in seconds (default %.0f)"
                             % DEFAULT_TIMEOUT_S)


def _plan(args):
    """(QEMU jobs, desktop profiles) for the arguments."""
    names = args.boards or profile_names()
    try:
        profiles = [load_profile(name) for name in names]
    except ValueError as e:
        raise BenchSetupError(str(e)) from None
    qemu = [p.name for p in profiles if p.qemu_core]
    jobs = mcu.profile_jobs(mcu.plan(qemu, (args.backend,))) if qemu else []
    return jobs, [p for p in profiles if not p.qemu_core]


def run(args):
    try:
        if args.repeat < 1:
            raise BenchSetupError("--repeat must be at least 1, got %d" % args.repeat)
        if args.train_steps < 0:
            raise BenchSetupError("--train-steps must be at least 0, got %d" % args.train_steps)
        jobs, desktop = _plan(args)
        mcu.check_firmware_dir(args.firmware_dir, jobs)
        for job in jobs:  # bad firmware or QEMU: before anything runs
            QemuBoard(MACHINES_OF_CORES[job.core], Path(args.firmware_dir) / job.firmware,
                      args.qemu_binary).check()
    except (BenchSetupError, QemuBoardError) as e:
        log("bench-checkpoint: %s" % e)
        return 2
    doc = {"repeat": args.repeat, "train_steps_past": args.train_steps, "backend": args.backend,
           "device": mcu.device_revision(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "runs": []}
    for i, job in enumerate(jobs):
        log("[%d/%d] %s on %s (%s)" % (i + 1, len(jobs) + len(desktop), job.name, job.core,
                                       job.firmware))
        doc["runs"].append(bench_qemu(job, Path(args.firmware_dir) / job.firmware,
                                      args.train_steps, args.repeat, args.qemu_binary,
                                      args.timeout_s))
        write(args.out, doc)
    for profile in desktop:
        log("[%d/%d] %s on the desktop micropython" % (len(doc["runs"]) + 1,
                                                       len(jobs) + len(desktop), profile.name))
        doc["runs"].append(bench_desktop(profile, args.train_steps, args.repeat,
                                         timeout_s=args.timeout_s))
        write(args.out, doc)
    failed = [r for r in doc["runs"] if r["summary"]["error"]]
    for r in failed:
        log("  %s failed: %s" % (r["board"], r["summary"]["error"]))
    print(table(doc))
    log("wrote %s and checkpoint.md" % (Path(args.out) / "checkpoint.json"))
    return 1 if failed else 0
