"""Calibration of the cost model (sim/cost.py): the learners bench-mcu measures for it, and the
fit of its coefficients to those measurements.

``bench-mcu --calibrate`` measures every board profile (bench/results/mcu.md, whose rows check
the model, and mcu.json) and then the calibration points (``calibration_points``: on the M0 and
the M7, widths 8 to 32 with batches 8 to 64, micro-batches, unequal and deeper networks, float and
compressed replay, other buffers and heaps) on every backend (pure, pyasm, ulab with its own
products, viper, and on the M7 vfp: ulab with the products in Thumb-2 VFP assembler) into
bench/results/mcu_calibration.json (the runs' summaries), fits the model and writes
sim/cost_fit.json. The profiles are not in the fit: they check it.

The fit, per (core, backend), a group "<core>-<backend>" (m7-vfp once vfp runs exist): the heap free after construction as a line in the learner's data
bytes (least squares), then the update coefficients by non-negative least squares of the relative
error over every critic-only and full update measured, the actor forward's own coefficients the
same way, the env step as the median measured, and the store (a Trainer.step less its update, actor
forward and env step) as the median over the runs with the cheapest updates.

Recalibrate after device changes: rebuild the firmware (firmware/build_qemu.sh MICROPYTHON_DIR DIR
ULAB_DIR), then

    microrl bench-mcu --firmware-dir DIR --calibrate --jobs 2

(about 17 minutes on two cores); ``python -m microrl_host.sim.calibrate`` refits cost_fit.json from
the committed mcu_calibration.json and prints the agreement with mcu.md.
"""

import json
import re
import sys
from pathlib import Path

from microrl_host.bench.report import write_atomic
from microrl_host.sim.cost import (FEATURES, FORWARD_FEATURES, HEAP_USABLE, MODEL_PATH,
                                   as_config, counted_backend, critic_update_counts, data_bytes,
                                   features, forward_counts, full_update_counts, measured, median,
                                   predict, relative_errors, usable)

RESULTS_DIR = Path(__file__).resolve().parents[3] / "bench" / "results"
UPDATE_NAMES = ("critic_update", "full_update", "update", "trainer_step")
STORE_RUNS = 6  # the runs whose Trainer.step less its update gives the store's cost


# The calibration points

def calibration_points():
    """The learners bench-mcu --calibrate measures on each core and backend (vfp on the M7 only):
    every width 8-32 with every batch 8-64, micro-batches, unequal and deeper networks, compressed
    replay, other buffers and heaps. [{"name", "core", "heap_bytes", "learner"}]."""
    shapes = [(w, w, b, 0, "float", 500) for w in (8, 12, 16, 24, 32) for b in (8, 16, 32, 64)]
    shapes += [(12, 12, 16, 4, "float", 500), (16, 16, 32, 8, "float", 500),
               (24, 24, 32, 8, "float", 500), (32, 32, 32, 4, "float", 500),
               (16, 16, 64, 16, "float", 500), (32, 32, 64, 8, "float", 500),
               (8, 8, 64, 8, "float", 500)]
    shapes += [(16, 32, 32, 0, "float", 500), (32, 16, 32, 0, "float", 500),
               ((16, 16, 16), (16, 16, 16), 16, 0, "float", 500)]
    shapes += [(12, 12, 16, 4, "compressed", 300), (16, 16, 24, 0, "compressed", 600),
               (24, 24, 32, 8, "compressed", 1500), (32, 32, 64, 0, "compressed", 3000),
               (8, 8, 16, 0, "compressed", 1000), (12, 12, 8, 0, "compressed", 1000),
               (12, 12, 16, 0, "compressed", 600), (12, 12, 16, 0, "compressed", 3000),
               (12, 12, 32, 0, "compressed", 2000), (16, 16, 16, 0, "compressed", 2000),
               (16, 16, 32, 0, "float", 3000)]
    points = []
    for core in ("m0", "m7"):
        for actor, critic, batch, micro, replay, buffer in shapes:
            learner = {"actor_hidden": list(actor) if isinstance(actor, tuple) else [actor] * 2,
                       "critic_hidden": list(critic) if isinstance(critic, tuple) else [critic] * 2,
                       "batch_size": batch, "micro_batch": micro, "replay": replay,
                       "buffer_capacity": buffer}
            big = core == "m7" and batch * max(learner["critic_hidden"]) >= 768
            points.append({"name": _point_name(learner), "core": core,
                           "heap_bytes": 460800 if big else 196608, "learner": learner})
    others = [(16, 32, "float", heap, buffer)  # the M7's other heaps
              for heap, buffer in ((94208, 300), (460800, 5000), (4194304, 10000))]
    others += [(12, 16, "compressed", heap, buffer)
               for heap, buffer in ((94208, 600), (112640, 600), (460800, 3000), (4194304, 5000))]
    for width, batch, replay, heap, buffer in others:
        learner = {"actor_hidden": [width] * 2, "critic_hidden": [width] * 2,
                   "batch_size": batch, "micro_batch": 0, "replay": replay,
                   "buffer_capacity": buffer}
        points.append({"name": _point_name(learner) + "-heap%d" % heap, "core": "m7",
                       "heap_bytes": heap, "learner": learner})
    return points


def _point_name(learner):
    name = "a%s-c%s-b%d" % ("x".join(map(str, learner["actor_hidden"])),
                            "x".join(map(str, learner["critic_hidden"])), learner["batch_size"])
    if learner["micro_batch"]:
        name += "-mb%d" % learner["micro_batch"]
    if learner["replay"] != "float":
        name += "-" + learner["replay"]
    return name + "-buf%d" % learner["buffer_capacity"]


# The fit

def nnls(a, b, iterations=500):
    """x >= 0 minimising |a x - b| (Lawson and Hanson's active set method), numpy only."""
    import numpy as np

    a = np.asarray(a, float)
    b = np.asarray(b, float)
    n = a.shape[1]
    x = np.zeros(n)
    active = np.zeros(n, bool)  # the variables free to move (the passive set)
    for _ in range(iterations):
        w = a.T @ (b - a @ x)
        if active.all() or (w[~active] <= 1e-12 * max(1.0, abs(w).max())).all():
            break
        active[np.argmax(np.where(active, -np.inf, w))] = True
        while True:
            z = np.zeros(n)
            z[active] = np.linalg.lstsq(a[:, active], b, rcond=None)[0]
            if (z[active] > 0).all():
                x = z
                break
            bad = active & (z <= 0)
            alpha = np.min(x[bad] / (x[bad] - z[bad]))
            x = x + alpha * (z - x)
            active &= x > 1e-12
    return x


def _fit_free_heap(runs):
    """base_bytes + per_data_byte x data_bytes = usable heap - free after construction."""
    import numpy as np

    a = [[1.0, data_bytes(as_config(r["learner"]))] for r in runs]
    b = [HEAP_USABLE * r["heap_bytes"] - r["summary"]["heap_free_after_construction_bytes"]
         for r in runs]
    base, per_byte = np.linalg.lstsq(np.array(a), np.array(b), rcond=None)[0]
    return {"base_bytes": float(base), "per_data_byte": float(per_byte)}


def fit(doc):
    """The model fitted to a bench-mcu document of calibration runs (mcu_calibration.json):
    {"device", "features", "groups": {"<core>-<backend>": {"coefficients", "free_heap",
    "actor_forward", "env_step_instructions", "store_<replay>_instructions", "runs", the fit's
    largest and rms relative errors}}}. The runs' device revision becomes the model's."""
    import numpy as np

    groups = {}
    for run in doc["runs"]:
        if usable(run):
            groups.setdefault("%s-%s" % (run["core"], run["backend"]), []).append(run)
    model = {"device": doc.get("device"), "features": list(FEATURES), "groups": {}}
    for key in sorted(groups):
        runs = groups[key]
        group = {"free_heap": _fit_free_heap(runs), "runs": len(runs)}
        rows, forward_rows = [], []
        for run in runs:
            config = as_config(run["learner"])
            backend = counted_backend(run["core"], run["backend"])
            for counts, name in ((critic_update_counts(config, backend), "critic_update"),
                                 (full_update_counts(config, backend), "full_update")):
                x = features(counts, config, run["heap_bytes"], group)
                rows.append([x[f] / measured(run, name) for f in FEATURES])  # relative error
            x = features(forward_counts(config, backend), config, run["heap_bytes"], group)
            forward = measured(run, "actor_forward")
            forward_rows.append([x[f] / forward for f in FORWARD_FEATURES] + [1.0 / forward])
        group["coefficients"] = dict(zip(FEATURES, map(float, nnls(rows, [1.0] * len(rows)))))
        group["actor_forward"] = dict(zip(FORWARD_FEATURES + ("pass",), map(float, nnls(
            forward_rows, [1.0] * len(forward_rows)))))
        group["env_step_instructions"] = median([measured(r, "env_step") for r in runs])
        # What a Trainer.step adds to its update besides the actor forward and env step: the
        # exploration noise, the store, the loop; per replay layout, from the runs with the
        # cheapest updates (it is a small difference of large numbers).
        for replay in ("float", "compressed"):
            cheapest = sorted((r for r in runs if as_config(r["learner"]).replay == replay),
                              key=lambda r: r["summary"]["update_mean_instructions"])[:STORE_RUNS]
            extra = [measured(r, "trainer_step") - r["summary"]["update_mean_instructions"]
                     - measured(r, "actor_forward") - measured(r, "env_step") for r in cheapest]
            group["store_%s_instructions" % replay] = max(0.0, median(extra)) if extra else None
        model["groups"][key] = group
        errors = [relative_errors(model, run) for run in runs]
        updates = [abs(e[name]) for e in errors for name in UPDATE_NAMES]
        group["max_relative_error"] = round(max(updates), 4)  # updates and Trainer.step
        group["rms_relative_error"] = round(float(np.sqrt(np.mean(np.square(updates)))), 4)
        group["actor_forward_max_relative_error"] = round(
            max(abs(e["actor_forward"]) for e in errors), 4)
    return model


def save_model(model, path=MODEL_PATH):
    write_atomic(path, json.dumps(model, indent=1) + "\n")


_KEPT = ("board", "core", "backend", "heap_bytes", "learner", "error", "summary")


def _kept(run):
    kept = {k: run.get(k) for k in _KEPT}
    summary = dict(kept["summary"] or {})
    summary["benchmarks"] = {name: {k: v for k, v in bench.items() if k not in _DROPPED}
                             for name, bench in summary.get("benchmarks", {}).items()}
    kept["summary"] = summary
    return kept


_DROPPED = ("alloc_error", "alloc_free_bytes", "min_instructions", "max_instructions")


def dumps(doc):
    """A bench-mcu document as committed calibration data: each run without its raw replies (the
    summary holds what the fit reads, less the allocation notes and extremes), a run per line."""
    head = {k: v for k, v in doc.items() if k != "runs"}
    runs = [json.dumps(_kept(run), sort_keys=True) for run in doc["runs"]]
    return (json.dumps(head, sort_keys=True)[:-1] + ', "runs": [\n' + ",\n".join(runs)
            + "\n]}\n")


# Agreement with the profiles

def table_runs(markdown):
    """The runs of a bench-mcu report (mcu.md) with their learners, heaps and counts (to the
    table's three digits), shaped as bench-mcu runs for ``agreement``."""
    learners = {}
    for line in markdown.splitlines():
        match = _LEARNER.match(line)
        if match:
            learners[match.group(1)] = (int(match.group(2)), json.loads(match.group(3)))
    runs = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 12 or cells[0] in ("board", "---") or cells[0].startswith("---"):
            continue
        board, core, backend = cells[:3]
        counts = dict(zip(("critic_update", "full_update", "update", "trainer_step"),
                          map(_number, cells[5:9])))
        if board not in learners or None in counts.values():
            continue
        heap, learner = learners[board]
        runs.append(dict(counts, board=board, core=core, backend=backend, heap_bytes=heap,
                         learner=learner))
    return runs


_LEARNER = re.compile(r"^- (\S+): heap (\d+) bytes, learner (\{.*\})$")
_SCALE = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}


def _number(cell):
    """An instruction count as the report prints it ("12.3 M"), or None."""
    match = re.match(r"^([0-9.]+) ?([kMG]?)$", cell)
    return float(match.group(1)) * _SCALE[match.group(2)] if match else None


def agreement(model, runs):
    """[(board, core, backend, model update, measured update, model step, measured step)] for
    bench-mcu runs (mcu.json's) or the rows of its report (``table_runs``) that measured both."""
    rows = []
    for run in runs:
        if "summary" in run:
            if not usable(run):
                continue
            update = run["summary"]["update_mean_instructions"]
            step = measured(run, "trainer_step")
        else:
            update, step = run["update"], run["trainer_step"]
        p = predict(run["learner"], run["core"], run["backend"], run["heap_bytes"], model)
        rows.append((run["board"], run["core"], run["backend"], p["update"], update,
                     p["trainer_step"], step))
    return rows


def agreement_markdown(model, runs):
    from microrl_host.bench.mcu import count

    lines = ["| board | core | backend | update: model | measured | error | Trainer.step: model "
             "| measured | error |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for board, core, backend, pu, mu, ps, ms in agreement(model, runs):
        lines.append("| %s | %s | %s | %s | %s | %+.1f %% | %s | %s | %+.1f %% |" % (
            board, core, backend, count(int(pu)), count(int(mu)), 100 * (pu - mu) / mu,
            count(int(ps)), count(int(ms)), 100 * (ps - ms) / ms))
    return "\n".join(lines) + "\n"


def main(argv=None):
    """python -m microrl_host.sim.calibrate [CALIBRATION_JSON [REPORT_MD]]: refit cost_fit.json
    from bench-mcu's calibration runs and print the agreement with the profiles' report."""
    argv = sys.argv[1:] if argv is None else argv
    calibration = Path(argv[0]) if argv else RESULTS_DIR / "mcu_calibration.json"
    report = Path(argv[1]) if len(argv) > 1 else RESULTS_DIR / "mcu.md"
    model = fit(json.loads(calibration.read_text()))
    save_model(model)
    print(summary(model))
    print(agreement_markdown(model, table_runs(report.read_text())))
    return 0


def summary(model):
    """The fit for people: per group its runs, errors and coefficients."""
    lines = []
    for key, group in model["groups"].items():
        lines.append("%s: %d runs, largest error %.1f %% (rms %.1f %%), actor forward %.1f %%; %s"
                     % (key, group["runs"], 100 * group["max_relative_error"],
                        100 * group["rms_relative_error"],
                        100 * group["actor_forward_max_relative_error"],
                        ", ".join("%s %.4g" % kv for kv in group["coefficients"].items() if kv[1])))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
