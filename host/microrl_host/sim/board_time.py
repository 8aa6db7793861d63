"""Estimated time on the real board: instructions from the cost model (sim/cost.py) on the QEMU
core that stands for the board's chip, times the chip's cycles per instruction over its clock
(the profile's ``qemu_core``, ``cpi`` and ``clock_hz``), for each backend its firmware can run.

Time to first reach -200 counts what the device's training loop does up to the first evaluation
at or above -200: the warm-up steps (a random action, the env step, the store), then a TD3 update
every ``train_every`` steps besides acting (an actor forward), the env step and the store, and
every ``eval_every`` steps an evaluation of ``eval_episodes`` x ``episode_steps`` actor forwards and
env steps. The range comes from the cpi range; the counts assume the QEMU firmware's heap layout
(microrl frozen in, so its code is not in the heap).
"""

from microrl_host.mirror.train import SOLVED_RETURN
from microrl_host.sim import cost


def backends(profile):
    """The backends the profile's firmware can run: ulab where it has ulab (vfp on a Thumb-2 core
    with an FPU, ``thumb_fpu``: there ulab's firmware computes the products in kernels_vfp on its
    own, and ulab's own products, the settings' ``"vfp": false``, are not estimated); what stock
    MicroPython firmware (no ulab) picks: pyasm on a Cortex-M chip (the official rp2 and stm32
    builds have the inline assembler), viper elsewhere (esp32: the native emitter); and the
    pure-Python float kernels' plain loops (firmware with neither, CircuitPython)."""
    stock = "pyasm" if profile.cortex_m else "viper"
    if not profile.ulab:
        return (stock, "pure")
    return ("vfp" if profile.thumb_fpu else "ulab", stock, "pure")


# What a backend's name means where it is not obvious: every line of an estimate says which it is.
LABELS = {"vfp": "vfp: ulab firmware, the products in Thumb-2 VFP assembler (kernels_vfp)",
          "pyasm": "pyasm: stock firmware (no ulab), the pure-Python backend's products, Adam and "
                   "target updates in machine code (kernels_pyasm)",
          "pure": "pure: the pure-Python kernels' plain loops (firmware without ulab or an inline "
                  "assembler: CircuitPython)"}


def label(backend):
    """The backend's name for a line of an estimate (vfp's says what it is)."""
    return LABELS.get(backend, backend)


def first_step_at(eval_returns, solved=SOLVED_RETURN):
    """The first evaluation step whose return reached ``solved``, or None."""
    return next((step for step, ret in eval_returns if ret >= solved), None)



def solve_work(config, counts, steps):
    """{updates, steps, evaluations, the instructions of each, total} to train ``steps`` env
    steps and evaluate every eval_every (the last at ``steps``), from ``counts`` (cost.predict)."""
    c = config
    warm = min(steps, c.learning_starts)
    updates = -(-(steps - warm) // c.train_every)  # steps learning_starts, +train_every, ...
    evaluations = steps // c.eval_every if c.eval_every else 1
    per_step = counts["trainer_step"] - counts["update"] / c.train_every  # act, env, store
    per_eval = c.eval_episodes * c.episode_length() * (counts["actor_forward"] + counts["env_step"])
    step_total = (steps - warm) * per_step + warm * (per_step - counts["actor_forward"])
    total = updates * counts["update"] + step_total + evaluations * per_eval
    return {"steps": steps, "updates": updates, "evaluations": evaluations,
            "update_instructions": counts["update"], "step_instructions": step_total / steps,
            "evaluation_instructions": per_eval, "instructions": total}


def _seconds(instructions, profile):
    low, high = profile.cpi
    return [instructions * low / profile.clock_hz, instructions * high / profile.clock_hz]


def estimate(profile, config, first_steps=(), model=None):
    """Per backend the profile can run, the estimated update and solve times on the board:
    [{"backend", "qemu_core", "update_s": [low, high], "solve": None or {..., "s": [low, high]},
    "counts": cost.predict's}], or [{"backend", "error"}] where the model gives no figure.
    ``first_steps``: the first step at -200 of each seed's run (None for a seed that did not)."""
    if not (profile.qemu_core and profile.cpi and profile.clock_hz):
        return []
    reached = [s for s in first_steps if s is not None]
    out = []
    for backend in backends(profile):
        entry = {"backend": backend, "qemu_core": profile.qemu_core}
        try:
            counts = cost.predict(config, profile.qemu_core, backend, profile.heap_bytes, model)
        except cost.CostModelError as e:
            entry["error"] = str(e)
            out.append(entry)
            continue
        entry["counts"] = counts
        entry["update_s"] = _seconds(counts["update"], profile)
        entry["solve"] = None
        entry["run"] = solve_work(config, counts, config.total_steps)  # the whole run
        entry["run"]["s"] = _seconds(entry["run"]["instructions"], profile)
        if reached:
            work = solve_work(config, counts, int(round(cost.median(reached))))
            work["seeds_reached"] = len(reached)
            work["seeds"] = len(first_steps)
            work["s"] = _seconds(work["instructions"], profile)
            entry["solve"] = work
        out.append(entry)
    return out


# For people

def duration(seconds):
    """[low, high] seconds as one range in the unit of the high end: "0.12-0.19 s", "3.1-5.0 h"."""
    low, high = seconds
    for scale, unit in ((86400.0, "d"), (3600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms")):
        if high >= scale or unit == "ms":
            return "%s-%s %s" % (_num(low / scale), _num(high / scale), unit)


def _num(x):
    return "%.2g" % x if x < 10 else "%.0f" % x


def _count(n):
    from microrl_host.bench.mcu import count
    return count(int(round(n)))


def basis(work, profile):
    """How a solve time was reached, in one line."""
    return ("%d steps: %d updates x %s + %d steps x %s + %d evaluations x %s = %s instructions, "
            "x cpi %g-%g / %g MHz" % (
                work["steps"], work["updates"], _count(work["update_instructions"]),
                work["steps"], _count(work["step_instructions"]), work["evaluations"],
                _count(work["evaluation_instructions"]), _count(work["instructions"]),
                profile.cpi[0], profile.cpi[1], profile.clock_hz / 1e6))


def update_cell(entries):
    """One table cell: the estimated time per update of each backend."""
    return "; ".join("%s %s" % (e["backend"], duration(e["update_s"]) if "error" not in e else "-")
                     for e in entries) or "-"


def solve_cell(entries):
    """One table cell: the estimated time to first reach -200 of each backend."""
    cells = []
    for e in entries:
        if "error" in e or e["solve"] is None:
            cells.append("%s -" % e["backend"])
        else:
            cells.append("%s %s" % (e["backend"], duration(e["solve"]["s"])))
    return "; ".join(cells) or "-"


def lines(profile, entries, solved=SOLVED_RETURN):
    """The estimate for people: a heading line, then a line per backend with its basis;
    ``solved``: the return the solve time is to (the environment's)."""
    if not entries:
        if not profile.clock_hz:
            return []  # not a microcontroller
        return ["no on-board time estimate: profile %s states no qemu_core and cpi"
                % profile.name]
    out = ["estimated time on the board: %s (%s at %g MHz, cpi %g-%g: %s), instruction counts "
           "of the cost model on QEMU core %s" % (profile.name, profile.core,
                                                  profile.clock_hz / 1e6, profile.cpi[0],
                                                  profile.cpi[1], profile.cpi_source,
                                                  profile.qemu_core)]
    for e in entries:
        if "error" in e:
            out.append("  %s: no estimate: %s" % (label(e["backend"]), e["error"]))
            continue
        text = "  %s: %s per update (%s instructions)" % (
            label(e["backend"]), duration(e["update_s"]), _count(e["counts"]["update"]))
        solve = e["solve"]
        if solve is None:
            text += "; did not reach %g; the run's %d steps: %s (%s)" % (
                solved, e["run"]["steps"], duration(e["run"]["s"]),
                basis(e["run"], profile))
        else:
            seeds = ("median of %d of %d seeds, " % (solve["seeds_reached"], solve["seeds"])
                     if solve["seeds"] > 1 else "")
            text += "; to first reach %g: %s (%s%s)" % (solved, duration(solve["s"]),
                                                        seeds, basis(solve, profile))
        out.append(text)
    return out
