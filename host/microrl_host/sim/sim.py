"""Desktop simulator mode (`microrl sim`): train on a board's config and show the result.

Engines: ``numpy`` runs the host mirror; ``micropython`` runs the unmodified device code in the unix
interpreter with the board's heap (``-X heapsize``), to tell before flashing whether a config fits
and learns. ``--env`` (or the config field ``env``) picks the built-in environment. Writes run.json,
curve.png, a picture of one deterministic episode of the learned policy (swingup.png for the
pendulum, servo.png for the servo) and actor.json (for `microrl export`).
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from microrl_host.board import circuitpy, mpy
from microrl_host.board.boards import resolve_board
from microrl_host.board.deploy import DeployError
from microrl_host.board.vboard import (VirtualBoardError, check_micropython, default_micropython,
                                      output_tail)
from microrl_host.mirror import envs, servo
from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.pendulum import DT_S, MAX_TORQUE_NM, Pendulum
from microrl_host.mirror.train import SOLVED_RETURN
from microrl_host.progress import Progress
from microrl_host.sim import board_time, export, footprint, plots

DEVICE_DIR = Path(__file__).resolve().parents[3] / "device"
DRIVER = Path(__file__).resolve().parent / "driver.py"
SHOW_START = (math.pi, 0.0)  # the swing-up picture starts hanging straight down, at rest
SHOW_TARGET_RAD = 2.0  # the servo picture: from hanging down, at rest, to 115 degrees
# Per environment: the evaluation return counted as solved and what it means (the curve's line and
# the on-board time estimate's "first reach").
SOLVED = {"pendulum": (SOLVED_RETURN, "swing-up solved"),
          "servo": (servo.SOLVED_RETURN, "reaches and holds the target")}
# Measured on one desktop CPU, ms per training step at 32x32, batch 32: pure-Python 66, ulab 3.8.
FALLBACK_SLOWDOWN = "about 17x (32x32 networks) to 37x (64x64) slower than ulab per update"
# Steps between the MicroPython driver's progress lines: a small board's pure-Python update takes
# up to a tenth of a second, an episode (200 steps) a minute or more.
PROGRESS_EVERY_STEPS = 10


class SimError(Exception):
    """A problem with the request, reported before any training starts."""


def build_config(profile, steps=None, seed=None, overrides=(), env=None):
    """TD3Config: defaults, the board's learner table, then --env, --steps, --seed and --set."""
    fields = dict(profile.learner)
    if env is not None:
        fields["env"] = env
    if steps is not None:
        fields["total_steps"] = steps
    if seed is not None:
        fields["seed"] = seed
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SimError("--set takes KEY=VALUE, got %r" % item)
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value  # a bare word is a string: --set replay=compressed
    try:
        config = TD3Config.from_dict(fields)
        envs.make(config.env)
    except (ValueError, TypeError) as e:
        raise SimError("bad config: %s" % e) from None
    return config


def run_numpy(config, profile, progress):
    from microrl_host.mirror.train import train

    dtype = np.float32 if profile.float_bits == 32 else np.float64
    result = train(config, dtype=dtype, **progress.mirror_callbacks(config.episode_length()))
    agent = result["agent"]
    angles, torques, duties = [], [], []
    if config.env == "servo":  # one deterministic episode to SHOW_TARGET_RAD, for the picture
        env = servo.Servo()
        obs = env.set_state((0.0, 0.0, SHOW_TARGET_RAD))
        angles.append(env.th)
        for _ in range(config.episode_length()):
            obs_row = obs.astype(dtype).reshape(1, -1)
            action = agent.actor.forward(obs_row, 1)[0]
            obs, _, _ = env.step(action)
            angles.append(env.th)
            duties.append(min(max(float(action[0]), -1.0), 1.0))
    if config.env == "pendulum":  # one deterministic episode from hanging down, for the picture
        obs_row = np.zeros((1, 3), dtype)
        env = Pendulum()
        obs = env.set_state(SHOW_START)
        angles.append(env.th)
        for _ in range(config.episode_length()):
            obs_row[0] = obs
            torque_nm = float(agent.actor.forward(obs_row, 1)[0, 0]) * MAX_TORQUE_NM
            env.advance(torque_nm)
            obs = env.observation()
            angles.append(env.th)
            torques.append(torque_nm)
    return {"episode_returns": result["episode_returns"],
            "eval_returns": [list(p) for p in result["eval_returns"]],
            "heap_peak_bytes": None, "angles": angles, "torques": torques, "duties": duties,
            "engine_info": {"dtype": np.dtype(dtype).name}, "actor": agent.actor.get_weights()}


def find_micropython(path, heap_bytes):
    """The interpreter to run, checked to start with ``heap_bytes``: --micropython PATH, else the
    virtual board's default one."""
    try:
        chosen = path or default_micropython()
        check_micropython(chosen, heap_bytes)
    except VirtualBoardError as e:
        raise SimError(str(e)) from None
    return shutil.which(chosen)


def has_ulab(micropython):
    proc = subprocess.run([micropython, "-c", "import ulab"], capture_output=True, timeout=60)
    return proc.returncode == 0


# What the driver and TD3 import: on this port their bytecode lives in the heap, on a board with
# microrl frozen into its firmware it stays in flash.
_CODE_SCRIPT = """
import gc, sys
sys.path.insert(0, %r)
gc.collect()
before = gc.mem_alloc()
from microrl import backend, config, train
for name in %r:
    __import__(name)
gc.collect()
print(gc.mem_alloc() - before)
"""


def code_heap_bytes(micropython, package_dir, config, env):
    """Heap bytes the package's code takes in ``micropython`` for ``config`` (its environment's
    module and its optional modules included), measured with gc.mem_alloc() in an ample heap."""
    optional = ["microrl." + config.env] + [
        name for name, used in (("microrl.compressed", config.replay == "compressed"),
                                ("microrl.prioritized", config.prioritized),
                                ("microrl.qactor", config.act_int8)) if used]
    script = _CODE_SCRIPT % (str(package_dir), optional)
    proc = subprocess.run([micropython, "-X", "heapsize=8M", "-c", script], capture_output=True,
                          text=True, timeout=120, env=env)
    if proc.returncode != 0:
        raise SimError("could not measure the package's code in %s (%s)"
                       % (micropython, output_tail(proc.stdout + proc.stderr, 400)))
    return int(proc.stdout.split()[-1])


def _package(micropython, mpy_cross, work, note):
    """(directory holding the device package for ``micropython``, how it holds it)."""
    implementation = check_micropython(micropython)
    if implementation == "circuitpython" and not mpy_cross:
        note("note: %s is CircuitPython, which loads only its own .mpy files: running the "
             "sources (pass --mpy-cross with CircuitPython's mpy-cross for bytecode)" % micropython)
        return DEVICE_DIR, "sources"
    if mpy_cross:
        circuitpy.check_mpy_cross(implementation, mpy_cross)
    # Run precompiled bytecode, as a deployed board does (`deploy --mpy` or frozen firmware):
    # compiling .py on the target would take heap the learner needs.
    package_dir = work / "m"
    mpy.compile_package(package_dir, mpy_cross=mpy_cross)
    return package_dir, "%s .mpy" % implementation


def run_micropython(config, profile, progress, micropython, steps, out_dir, mpy_cross=None):
    ulab = has_ulab(micropython)
    env = dict(os.environ)
    env.pop("MICRORL_BACKEND", None)
    if not ulab:
        if profile.ulab:
            progress.write("warning: %s has no ulab: using the pure-Python fallback, %s"
                           % (micropython, FALLBACK_SLOWDOWN))
        env["MICRORL_FLOAT_BITS"] = str(profile.float_bits)
        # The float kernels, which the mirror and the heap model follow (the interpreter would
        # pick the viper backend, whose products are int16: bench and bench-mcu measure that).
        env["MICRORL_BACKEND"] = "python"
    show_state = list(SHOW_START) if config.env == "pendulum" else [0.0, 0.0, SHOW_TARGET_RAD]
    spec = {"config": config_dict(config), "steps": steps, "show_state": show_state,
            "progress_every": PROGRESS_EVERY_STEPS}
    # The run's files sit in a short temporary directory: every module keeps its path in the heap
    # (a board's are /lib/microrl/...), and a long output path cost the smallest profiles their
    # margin.
    work = Path(tempfile.mkdtemp(prefix="mrl"))
    try:
        try:
            package_dir, package = _package(micropython, mpy_cross, work, progress.write)
        except (DeployError, VirtualBoardError) as e:
            raise SimError(str(e)) from None
        return _run_in(work, spec, config, profile, progress, micropython, env, ulab,
                       package_dir, package)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_in(work, spec, config, profile, progress, micropython, env, ulab, package_dir, package):
    """run_micropython's run, its files in ``work`` (the package in ``package_dir``)."""
    spec_path = work / "s.json"
    spec_path.write_text(json.dumps(spec))
    driver = work / "d.py"
    shutil.copyfile(DRIVER, driver)
    # A profile whose firmware has microrl frozen in keeps the code out of the heap: this port
    # gets the board's heap plus what the code takes here, so that the learner has the board's.
    code = code_heap_bytes(micropython, package_dir, config, env) if profile.frozen else 0
    cmd = [micropython, "-X", "heapsize=%d" % (profile.heap_bytes + code), str(driver),
           str(package_dir), str(spec_path)]
    out = {"episode_returns": [], "eval_returns": [], "heap_peak_bytes": None, "angles": [],
           "torques": [], "duties": [], "actor": [], "heap_code_bytes": code}
    done = False
    other_lines = []  # MicroPython prints an uncaught exception's traceback on stdout
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as proc:
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                other_lines.append(line)
                continue
            kind = event.get("event")
            if kind == "built":
                out["engine_info"] = {"micropython": micropython, "ulab": ulab,
                                      "package": package, "backend": event["backend"],
                                      "store_bits": event["store_bits"]}
                out["heap_peak_bytes"] = event["heap_bytes"]
            elif kind == "step":
                progress.update(event["step"])
            elif kind == "episode":
                out["episode_returns"].append(event["return"])
                progress.update(event["step"], event["return"])
            elif kind == "eval":
                out["eval_returns"].append([event["step"], event["return"]])
                progress.update(event["step"], eval_return=event["return"])
            elif kind == "pose":  # the first action of the policy for the step after this pose
                out["angles"].append(event["th"])
                if "action" in event:
                    if config.env == "pendulum":
                        out["torques"].append(event["action"] * MAX_TORQUE_NM)
                    else:
                        out["duties"].append(min(max(event["action"], -1.0), 1.0))
            elif kind == "actor":
                if event["param"] == len(out["actor"]):
                    out["actor"].append([])
                out["actor"][event["param"]].extend(event["row"])
            elif kind == "done":
                out["heap_peak_bytes"] = event["heap_peak_bytes"]
                done = True
        other_lines.append(proc.stderr.read())
    if proc.returncode != 0 or not done:
        raise SimError("MicroPython run failed (exit %s, %s)"
                       % (proc.returncode, output_tail("".join(other_lines))))
    return out


def config_dict(config):
    d = config.to_dict()
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def simulate(board="unix", engine="numpy", micropython=None, steps=None, seed=None,
             out_dir="runs/sim", overrides=(), show_progress=True, mpy_cross=None, env=None):
    """Run one simulation and write its files; returns the run.json object."""
    profile = resolve_board(board)
    config = build_config(profile, steps, seed, overrides, env)
    footprint.check_fits(config, profile.float_bits, profile.heap_bytes, profile.name,
                         profile.frozen)
    if engine not in ("numpy", "micropython"):
        raise SimError("engine must be numpy or micropython, got %r" % engine)
    interpreter = (find_micropython(micropython, profile.heap_bytes) if engine == "micropython"
                   else None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start_s = time.perf_counter()
    with Progress(config.total_steps, "sim %s, %s" % (profile.name, engine),
                  show_progress) as progress:
        if engine == "numpy":
            res = run_numpy(config, profile, progress)
        else:
            res = run_micropython(config, profile, progress, interpreter, config.total_steps,
                                  out_dir, mpy_cross)
    wall_s = time.perf_counter() - start_s
    final = res["eval_returns"][-1][1] if res["eval_returns"] else None
    solved, solved_label = SOLVED[config.env]
    picture = out_dir / ("servo.png" if config.env == "servo" else "swingup.png")
    run = {
        "board": profile.name,
        "engine": engine,
        "engine_info": res.get("engine_info", {}),
        "config": config_dict(config),
        "episode_returns": res["episode_returns"],
        "eval_returns": res["eval_returns"],
        "final_eval_return": final,
        "steps_per_s": config.total_steps / wall_s,
        "heap_peak_bytes": res["heap_peak_bytes"],
        "heap_estimate_bytes": footprint.estimate_heap_bytes(config, profile.float_bits),
        "heap_profile_bytes": profile.heap_bytes,
        "heap_code_bytes": res.get("heap_code_bytes", 0),  # frozen profiles: code held in flash
        "wall_s": wall_s,
        # the estimated time on the real board, per update and to first reach the solved return
        "solved_return": solved,
        "board_time": board_time.estimate(profile, config,
                                          [board_time.first_step_at(res["eval_returns"], solved)]),
        "files": {"run": str(out_dir / "run.json"), "curve": str(out_dir / "curve.png"),
                  picture.stem: str(picture), "actor": str(out_dir / "actor.json")},
    }
    title = "%s, %s engine, seed %d" % (profile.name, engine, config.seed)
    if config.env == "servo":
        run["servo"] = {"angles_rad": res["angles"], "duties": res["duties"],
                        "target_rad": SHOW_TARGET_RAD, "dt_s": servo.DT_S}
        curve_title = "TD3 on the servo: "
        plots.plot_servo(picture, res["angles"], res["duties"], SHOW_TARGET_RAD, servo.DT_S,
                         "Learned servo move (%s), final eval %.2f" % (title, final or math.nan))
    else:
        run["swingup"] = {"angles_rad": res["angles"], "torques_nm": res["torques"], "dt_s": DT_S}
        curve_title = "TD3 on Pendulum-v1: "
        plots.plot_swingup(picture, res["angles"], res["torques"], DT_S,
                           "Learned swing-up (%s), final eval %.1f" % (title, final or math.nan))
    plots.plot_curve(out_dir / "curve.png", config.episode_length(), run["episode_returns"],
                     run["eval_returns"], curve_title + title,
                     solved=(solved, "%g: %s" % (solved, solved_label)))
    export.save_actor(out_dir / "actor.json", footprint.network_sizes(config)[0], res["actor"],
                      config.env)
    tmp = out_dir / "run.json.tmp"
    tmp.write_text(json.dumps(run, indent=1))
    os.replace(tmp, out_dir / "run.json")
    return run


def add_arguments(parser):
    parser.add_argument("--board", default="unix",
                        help="board profile: a name in boards/ or a .toml file (default unix)")
    parser.add_argument("--engine", default="numpy", choices=("numpy", "micropython"))
    parser.add_argument("--micropython", default=None, metavar="PATH",
                        help="MicroPython binary for --engine micropython, e.g. one with ulab "
                             "(or a CircuitPython unix build)")
    parser.add_argument("--mpy-cross", default=None, metavar="PATH",
                        help="mpy-cross for the interpreter's bytecode (CircuitPython's own for a "
                             "CircuitPython build; without it CircuitPython runs the sources)")
    parser.add_argument("--env", default=None, choices=envs.NAMES,
                        help="built-in environment (default: the profile's, else pendulum)")
    parser.add_argument("--steps", type=int, default=None, help="environment steps")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default="runs/sim", help="output directory (default runs/sim)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field with a JSON value or a bare string, e.g. "
                             "--set 'actor_hidden=[8,8]' --set replay=compressed")
    parser.add_argument("--json", action="store_true", help="print run.json on stdout")


def run(args):
    try:
        result = simulate(args.board, args.engine, args.micropython, args.steps, args.seed,
                          args.out, args.set, show_progress=True, mpy_cross=args.mpy_cross,
                          env=args.env)
    except (SimError, ValueError) as e:
        print("microrl sim: error: %s" % e, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
        return 0
    print("board %s, engine %s: %d steps in %.1f s (%.0f steps/s)"
          % (result["board"], result["engine"], result["config"]["total_steps"],
             result["wall_s"], result["steps_per_s"]))
    if result["heap_peak_bytes"] is not None:
        code = result.get("heap_code_bytes", 0)
        if code:
            print("heap: %d bytes live at peak besides %d bytes of code that the board holds in "
                  "flash (microrl frozen in), profile has %d"
                  % (result["heap_peak_bytes"] - code, code, result["heap_profile_bytes"]))
        else:
            print("heap: %d bytes live at peak, profile has %d"
                  % (result["heap_peak_bytes"], result["heap_profile_bytes"]))
    print("evaluation return (mean of %d deterministic episodes): %.1f"
          % (result["config"]["eval_episodes"], result["final_eval_return"]))
    for line in board_time.lines(resolve_board(args.board), result["board_time"],
                                 result["solved_return"]):
        print(line)
    for name, path in result["files"].items():
        print("wrote %s" % path)
    return 0
