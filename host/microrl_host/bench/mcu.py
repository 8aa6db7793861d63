"""`microrl bench-mcu`: instructions and heap of every board profile's learner on the QEMU core that
stands for its chip, with MicroPython's QEMU firmware (``firmware/build_qemu.sh`` builds it).

For each profile in boards/ but unix and each backend, in its own QEMU board: the firmware
``DIR/<core>-<firmware>-<heap_bytes>.elf`` (the profile's heap) serves with the profile's learner
and the backend forced (``"backend"`` of the settings: ``python``, ``ulab`` or ``viper``). The
backends:

- ``pure``: the pure-Python float kernels with their plain loops (settings ``"asm": false``), on
  the ``pure`` firmware (no ulab): what firmware without an inline assembler runs (CircuitPython);
- ``pyasm``: the pure-Python backend as stock MicroPython for a Cortex-M chip runs it, its
  products, Adam and target updates in machine code (device/microrl/kernels_pyasm.py), on the
  ``pure`` firmware; only where the chip is a Cortex-M (the profile's ``core``);
- ``ulab``: ulab's own products (settings ``"vfp": false``), on the ``ulab`` firmware;
- ``vfp``: ulab with the MLP products in Thumb-2 VFP assembler (device/microrl/kernels_vfp.py,
  settings ``"vfp": true``), on the ``ulab`` firmware; only where the chip is a Thumb-2 core with
  a single-precision FPU (the profile's ``thumb_fpu``) and so only on the M7, the one QEMU core
  with an FPU (the ESP32s stand in on the M7 too, but an Xtensa core has no Thumb assembler);
- ``viper``: the viper kernels, on the ``pure`` firmware (stock MicroPython compiles viper; the
  backend a stock ESP32 picks).

``hello`` names the firmware, its backend and who computes the products (``products``: a run whose
firmware reports another backend, or products other than its backend's, is an error);
``reset`` builds the learner (its reply holds the heap free after construction), then the device
benchmarks run (device/microrl/bench.py):
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

``--configs FILE`` measures the learners of FILE instead (a JSON list of {name, core, heap_bytes,
learner}) into OUT/mcu_configs.json. ``--calibrate`` measures the profiles and then the cost
model's calibration points into OUT/mcu_calibration.json and refits the model (sim/calibrate.py).
``--jobs N`` runs N QEMU boards at once: the instruction counts do not depend on it.
"""

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from microrl_host.bench.report import write_atomic
from microrl_host.board import deploy
from microrl_host.board.boards import BOARDS_DIR, load_profile, profile_names
from microrl_host.board.link import BoardLink
from microrl_host.board.qemu import (CORES as MACHINES_OF_CORES, QemuBoard, QemuBoardError,
                                     ticks_to_instructions)
from microrl_host.board.transport import BoardError, LinkError, SerialTransport
from microrl_host.mirror.config import TD3Config
from microrl_host.progress import Progress, log as progress_log

BACKENDS = ("pure", "pyasm", "ulab", "vfp", "viper")
# the firmware each backend runs on
FIRMWARE = {"pure": "pure", "pyasm": "pure", "ulab": "ulab", "vfp": "ulab", "viper": "pure"}
DEVICE_BACKEND = {"pure": "python", "pyasm": "python", "ulab": "ulab", "vfp": "ulab",
                  "viper": "viper"}  # backend.py's
SETTINGS = {"pure": {"asm": False}, "pyasm": {"asm": True}, "ulab": {"vfp": False},
            "vfp": {"vfp": True}}  # microrl.json keys besides "backend"
ASM_PRODUCTS = ("thumb", "vfp")  # the products kernels_pyasm reports (hello's "products")
VFP_CORE = "m7"  # the one QEMU core with an FPU: where vfp runs
NAMES = ("actor_forward", "env_step", "critic_update", "full_update", "trainer_step")
DEFAULT_TIMEOUT_S = 1800.0  # the longest a board may stay silent: one benchmark's runs
_BUILD = "firmware/build_qemu.sh"


class BenchSetupError(Exception):
    """A bad argument or a missing firmware: the message says what and how to fix it."""


def firmware_name(core, backend, heap_bytes):
    """The firmware file that runs ``backend`` (pure, ulab, vfp, viper) on ``core``."""
    return "%s-%s-%d.elf" % (core, FIRMWARE[backend], heap_bytes)


def _check_backend(backend):
    if backend not in BACKENDS:
        raise BenchSetupError("unknown backend %r; known: %s" % (backend, ", ".join(BACKENDS)))


class Job(NamedTuple):
    """One learner on one firmware: what a QEMU board measures."""
    name: str  # the profile's name, or a calibration point's
    learner: dict  # TD3Config fields that differ from the defaults
    heap_bytes: int
    core: str  # m0, m3 or m7
    backend: str  # pure, ulab, vfp or viper
    firmware: str  # file name in the firmware directory


def profile_jobs(entries):
    return [Job(p.name, dict(p.learner), p.heap_bytes, core, backend, name)
            for p, core, backend, name in entries]


def config_jobs(points, backends=BACKENDS):
    """Jobs for ``points``, a list of {"name", "core", "heap_bytes", "learner"} (a --configs file
    or the cost model's calibration points), each on every one of ``backends`` (vfp only on the
    M7)."""
    for backend in backends:
        _check_backend(backend)
    if not isinstance(points, list) or not points:
        raise BenchSetupError("a configs file holds a non-empty JSON list of "
                              "{\"name\", \"core\", \"heap_bytes\", \"learner\"}")
    jobs = []
    for i, point in enumerate(points):
        if not isinstance(point, dict) or set(point) - {"name", "core", "heap_bytes", "learner"}:
            raise BenchSetupError("config %d: expected an object with name, core, heap_bytes, "
                                  "learner, got %r" % (i, point))
        core, heap, learner = point.get("core"), point.get("heap_bytes"), point.get("learner")
        name = point.get("name") or "config-%d" % i
        if core not in MACHINES_OF_CORES:
            raise BenchSetupError("config %s: core must be one of %s, got %r"
                                  % (name, ", ".join(MACHINES_OF_CORES), core))
        if not isinstance(heap, int) or isinstance(heap, bool) or heap <= 0:
            raise BenchSetupError("config %s: heap_bytes must be a positive integer, got %r"
                                  % (name, heap))
        try:
            TD3Config.from_dict(learner)
        except (ValueError, TypeError, AttributeError) as e:
            raise BenchSetupError("config %s: bad learner: %s" % (name, e)) from None
        for backend in backends:
            if backend == "vfp" and core != VFP_CORE:
                continue
            jobs.append(Job(name, dict(learner), heap, core, backend,
                            firmware_name(core, backend, heap)))
    return jobs


def plan(boards=None, backends=BACKENDS):
    """[(profile, core, backend, firmware file name)] for ``boards`` (default: all but unix); vfp
    only for the profiles with thumb_fpu (``vfp_skipped`` names the others), pyasm only for those
    whose chip is a Cortex-M."""
    for backend in backends:
        _check_backend(backend)
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
            if (backend == "vfp" and not profile.thumb_fpu
                    or backend == "pyasm" and not profile.cortex_m):
                continue
            entries.append((profile, core, backend,
                            firmware_name(core, backend, profile.heap_bytes)))
    return entries


def vfp_skipped(boards=None, backends=BACKENDS):
    """The profiles of ``plan(boards, backends)`` that it leaves vfp out for (no thumb_fpu)."""
    if "vfp" not in backends:
        return []
    names = boards or [n for n in profile_names() if n != "unix"]
    return [name for name in names if not load_profile(name).thumb_fpu]


def check_firmware_dir(firmware_dir, jobs):
    """BenchSetupError naming the missing directory or files, and the command that builds them."""
    firmware_dir = Path(firmware_dir)
    build = "%s MICROPYTHON_DIR %s ULAB_DIR" % (_BUILD, firmware_dir)
    if not firmware_dir.is_dir():
        raise BenchSetupError("firmware directory %s does not exist: build the firmware with %s "
                              "(your micropython and micropython-ulab checkouts)"
                              % (firmware_dir, build))
    missing = [job for job in jobs if not (firmware_dir / job.firmware).is_file()]
    if missing:
        heaps = {}
        for job in missing:
            heaps.setdefault(job.core, set()).add(job.heap_bytes)
        spec = " ".join("%s=%s" % (core, ",".join(str(h) for h in sorted(heaps[core])))
                        for core in sorted(heaps))
        named = {}
        for job in missing:  # a file once, with the first job that needs it
            named.setdefault(job.firmware, "%s (%s, %s)" % (job.firmware, job.name, job.backend))
        raise BenchSetupError("%s lacks %s; build them with HEAPS=\"%s\" %s (your micropython and "
                              "micropython-ulab checkouts)" % (
                                  firmware_dir, ", ".join(named.values()), spec, build))


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
    ``backend``'s, or its products are not: "vfp" for vfp, anything else for ulab (its own),
    machine code (thumb or vfp) for pyasm, not that for pure (its plain loops).
    """
    replies = {} if replies is None else replies
    replies["hello"] = _kept(link.connect())
    found = replies["hello"].get("backend")
    if backend is not None and found != DEVICE_BACKEND[backend]:
        reason = replies["hello"].get("backend_reason")
        raise ValueError("the firmware reports backend %s%s, expected %s"
                         % (found, " (%s)" % reason if reason else "", DEVICE_BACKEND[backend]))
    products = replies["hello"].get("products")
    if backend == "vfp" and products != "vfp":
        raise ValueError("the firmware reports products %s, expected vfp (kernels_vfp: ulab in "
                         "single precision on a Thumb-2 core with an FPU)" % products)
    if backend == "ulab" and products == "vfp":
        raise ValueError("the firmware reports products vfp, expected ulab's own (settings "
                         "\"vfp\": false)")
    if backend == "pyasm" and products not in ASM_PRODUCTS:
        raise ValueError("the firmware reports products %s, expected machine code (kernels_pyasm: "
                         "a Cortex-M firmware with the inline assembler)" % products)
    if backend == "pure" and products in ASM_PRODUCTS:
        raise ValueError("the firmware reports products %s, expected the plain loops (settings "
                         "\"asm\": false)" % products)
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
             "single-precision FPU. Device code %s." % (doc.get("device") or "unknown"),
             "- backends: pure: the pure-Python float kernels' plain loops (firmware without "
             "ulab or an inline assembler, `\"asm\": false`); pyasm: the pure-Python backend "
             "with its products, Adam and target updates in machine code (kernels_pyasm: stock "
             "firmware on a Cortex-M); ulab: "
             "ulab's own products (`\"vfp\": false`); vfp: ulab with the MLP products in Thumb-2 "
             "VFP assembler (kernels_vfp; profiles with thumb_fpu, on the M7); viper: the viper "
             "kernels (stock firmware, no ulab).", "",
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
    learners = {}
    for run in doc["runs"]:  # what each row measured: the cost model's check reads these
        learners.setdefault(run["board"], (run["heap_bytes"], run["learner"]))
    lines += ["", "Learners (the TD3Config fields that differ from the defaults) and heaps:", ""]
    lines += [LEARNER_LINE % (board, heap, json.dumps(learner, sort_keys=True))
              for board, (heap, learner) in learners.items()]
    return "\n".join(lines) + "\n"


LEARNER_LINE = "- %s: heap %d bytes, learner %s"


def write(out_dir, doc):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "mcu.json", json.dumps(doc, indent=1) + "\n")
    write_atomic(out_dir / "mcu.md", markdown(doc))


# One board, then all

def qemu_run(name, learner, heap_bytes, core, backend, firmware, qemu_binary, body, **fields):
    """Start ``firmware`` in its own QEMU of ``core`` and call ``body(board, run)``; returns the
    run's record (board, core, machine, backend, firmware, heap, instructions per tick, learner,
    ``fields``, wall time) with the error that stopped it, if one did (a link, deploy or QEMU
    error, or a ValueError from ``body``)."""
    machine = MACHINES_OF_CORES[core]
    board = QemuBoard(machine, firmware, qemu_binary)
    run = {"board": name, "core": core, "machine": machine, "backend": backend,
           "firmware": Path(firmware).name, "heap_bytes": heap_bytes,
           "instructions_per_tick": board.instructions_per_tick, "learner": dict(learner)}
    run.update(fields, error=None)
    started = time.monotonic()
    try:
        board.start()
        body(board, run)
    except (LinkError, deploy.DeployError, QemuBoardError, ValueError) as e:
        run["error"] = "%s: %s" % (type(e).__name__, str(e).strip())
    finally:
        board.stop()
    run["wall_s"] = round(time.monotonic() - started, 1)
    return run


def bench_one(name, learner, heap_bytes, core, backend, firmware, repeat, qemu_binary=None,
              timeout_s=DEFAULT_TIMEOUT_S, log=None):
    """One learner config (a profile's, or a calibration point's, called ``name``) on one firmware
    in its own QEMU: the run's record (a LinkError is recorded)."""
    def body(board, run):
        board.serve(dict(SETTINGS.get(backend, {}), board=name, config=dict(learner),
                         backend=DEVICE_BACKEND[backend]))
        with BoardLink(SerialTransport(board.port), timeout_s=timeout_s) as link:
            collect(link, dict(learner), repeat, backend, log, run["replies"])

    run = qemu_run(name, learner, heap_bytes, core, backend, firmware, qemu_binary, body,
                   replies={})
    run["summary"] = summarize(run)
    return run


def device_revision():
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


def add_firmware_arguments(parser):
    """--firmware-dir and --qemu-binary: what every QEMU benchmark runs on."""
    parser.add_argument("--firmware-dir", required=True, metavar="DIR",
                        help="directory of <core>-<backend>-<heap>.elf (firmware/build_qemu.sh)")
    parser.add_argument("--qemu-binary", default=None,
                        help="QEMU to run (default $QEMU, else qemu-system-arm on PATH)")


def add_arguments(parser):
    add_firmware_arguments(parser)
    parser.add_argument("--out", default="bench/results", help="output directory")
    parser.add_argument("--boards", nargs="*", default=None,
                        help="profiles (default: every profile but unix)")
    parser.add_argument("--backends", nargs="*", default=None, choices=BACKENDS,
                        help="backends (default: pure pyasm ulab vfp viper; pure keeps the "
                             "pure-Python loops (\"asm\": false), pyasm computes in machine "
                             "code, only for Cortex-M profiles; ulab keeps ulab's own "
                             "products (\"vfp\": false), vfp computes them in Thumb-2 VFP "
                             "assembler, only for profiles with thumb_fpu and on the m7; viper "
                             "runs on the pure firmware)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per benchmark, the median reported (default 3)")
    parser.add_argument("--configs", default=None, metavar="FILE",
                        help="instead of the profiles, measure the learners of FILE, a JSON list "
                             "of {name, core, heap_bytes, learner}; writes OUT/mcu_configs.json")
    parser.add_argument("--calibrate", action="store_true",
                        help="measure every profile (mcu.json, mcu.md) and the cost model's "
                             "calibration points (mcu_calibration.json), then refit the model "
                             "(microrl_host/sim/cost_fit.json)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="QEMU boards at once (the counts do not depend on it; default 1)")
    parser.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S,
                        help="longest a board may stay silent, in seconds (default %.0f)"
                             % DEFAULT_TIMEOUT_S)


def _log(text):
    progress_log(text)  # above the bar of the jobs, when one is on the screen


def _jobs(args):
    """{output file stem: jobs} for the arguments. vfp runs on the m7 core only, for the profiles
    with thumb_fpu: a note names the profiles or configs it is left out for when --backends asks
    for it."""
    backends = BACKENDS if args.backends is None else args.backends
    noted = args.backends is not None and "vfp" in args.backends
    if args.configs and args.calibrate:
        raise BenchSetupError("--configs and --calibrate measure different learners: give one")
    if args.configs:
        try:
            points = json.loads(Path(args.configs).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise BenchSetupError("cannot read --configs %s: %s" % (args.configs, e)) from None
        plans = {"mcu_configs": config_jobs(points, backends)}
        others = [point.get("name") or "config-%d" % i for i, point in enumerate(points)
                  if point["core"] != VFP_CORE]
        if noted and others:
            _log("bench-mcu: vfp runs on the m7 core only: skipped for %s" % ", ".join(others))
    else:
        plans = {"mcu": profile_jobs(plan(args.boards, backends))}
        skipped = vfp_skipped(args.boards, backends)
        if noted and skipped:
            _log("bench-mcu: vfp needs a Thumb-2 core with an FPU (thumb_fpu in the profile): "
                 "skipped for %s" % ", ".join(skipped))
    if args.calibrate:
        from microrl_host.sim import calibrate
        if args.boards or (args.backends is not None and set(args.backends) != set(BACKENDS)):
            raise BenchSetupError("--calibrate measures every profile on every backend: "
                                  "drop --boards and --backends")
        plans["mcu_calibration"] = config_jobs(calibrate.calibration_points(), BACKENDS)
    if not any(plans.values()):
        raise BenchSetupError("nothing to measure: " + (
            "vfp runs on the m7 core only, for profiles with thumb_fpu = true (%s)"
            % ", ".join(n for n in profile_names() if load_profile(n).thumb_fpu)
            if backends else "--backends names none"))
    return plans


def measure_all(jobs, args, on_result):
    """Every job, ``args.jobs`` QEMU boards at a time; ``on_result(index, run)`` as each ends."""
    def one(indexed):
        i, job = indexed
        _log("[%d/%d] %s on %s, %s (%s)" % (i + 1, len(jobs), job.name, job.core, job.backend,
                                             job.firmware))
        result = bench_one(job.name, job.learner, job.heap_bytes, job.core, job.backend,
                           Path(args.firmware_dir) / job.firmware, args.repeat, args.qemu_binary,
                           args.timeout_s, lambda text: _log("  %s, %s: %s"
                                                             % (job.name, job.backend, text)))
        if result["error"]:
            _log("  %s, %s failed: %s" % (job.name, job.backend, result["error"]))
        recorded(i, result)
        return result

    lock = threading.Lock()  # results are written one at a time
    bar = Progress(len(jobs), "bench-mcu", unit="job")

    def recorded(i, result):
        with lock:
            on_result(i, result)
            bar.advance()

    with bar, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        return list(pool.map(one, enumerate(jobs)))


def run(args):
    try:
        if args.repeat < 1:
            raise BenchSetupError("--repeat must be at least 1, got %d" % args.repeat)
        if args.jobs < 1:
            raise BenchSetupError("--jobs must be at least 1, got %d" % args.jobs)
        plans = _jobs(args)
        every = [job for jobs in plans.values() for job in jobs]
        check_firmware_dir(args.firmware_dir, every)
        for firmware in sorted({(job.core, job.firmware) for job in every}):
            # bad firmware or QEMU: before anything runs
            QemuBoard(MACHINES_OF_CORES[firmware[0]], Path(args.firmware_dir) / firmware[1],
                      args.qemu_binary).check()
    except (BenchSetupError, QemuBoardError) as e:
        _log("bench-mcu: %s" % e)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    docs = {}
    for stem, jobs in plans.items():
        doc = {"repeat": args.repeat, "device": device_revision(),
               "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "runs": []}
        done = [None] * len(jobs)

        def on_result(i, result, doc=doc, done=done, stem=stem):
            done[i] = result
            doc["runs"] = [r for r in done if r is not None]
            if stem == "mcu":
                write(out, doc)
            elif stem == "mcu_calibration":  # committed: summaries only, a run per line
                from microrl_host.sim import calibrate
                write_atomic(out / (stem + ".json"), calibrate.dumps(doc))
            else:
                write_atomic(out / (stem + ".json"), json.dumps(doc, indent=1) + "\n")

        results = measure_all(jobs, args, on_result)
        failed += sum(1 for r in results if r["error"])
        docs[stem] = doc
        print(markdown(doc))
        _log("wrote %s" % (out / (stem + ".json")) + (" and mcu.md" if stem == "mcu" else ""))
    if args.calibrate:
        from microrl_host.sim import calibrate
        model = calibrate.fit(docs["mcu_calibration"])
        calibrate.save_model(model)
        _log("wrote %s" % calibrate.MODEL_PATH)
        print(calibrate.summary(model))
        print(calibrate.agreement_markdown(model, docs["mcu"]["runs"]))
    return 1 if failed else 0
