"""Learning benchmark of every board profile's config on the numpy mirror (`microrl bench-boards`).

For each profile in boards/, trains the mirror in the board's float precision for up to 20 000 steps
on several seeds, evaluating every 1000 steps, and reports the final evaluation return and the
first step at which the evaluation reached -200, with the estimated time on the real board per
update and to first reach -200 (median over the seeds that did, the range from the chip's cycles
per instruction; sim/board_time.py). Writes boards.json and boards.md.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

from microrl_host.board.boards import load_profile, profile_names
from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.train import SOLVED_RETURN
from microrl_host.progress import train_mirror
from microrl_host.sim import board_time


def bench_profile(name, seeds, steps):
    profile = load_profile(name)
    dtype = np.float32 if profile.float_bits == 32 else np.float64
    runs = []
    for seed in seeds:
        fields = dict(profile.learner, total_steps=steps, eval_every=1000, seed=seed)
        result = train_mirror(TD3Config.from_dict(fields), dtype, "%s seed %d" % (name, seed))
        runs.append({"seed": seed, "steps": steps, "wall_s": round(result["wall_s"], 2),
                     "final_eval_return": round(result["final_eval_return"], 1),
                     "best_eval_return": round(max(r for _, r in result["eval_returns"]), 1),
                     "first_step_at_minus_200": result["first_step_at_minus_200"]})
        print("%-14s seed %d: final %8.1f, first >= -200 at %s, %.1f s"
              % (name, seed, runs[-1]["final_eval_return"], runs[-1]["first_step_at_minus_200"],
                 runs[-1]["wall_s"]), file=sys.stderr)
    config = TD3Config.from_dict(dict(profile.learner, total_steps=steps, eval_every=1000))
    estimate = board_time.estimate(profile, config,
                                   [run["first_step_at_minus_200"] for run in runs])
    return {"board": name, "learner": profile.learner, "float_bits": profile.float_bits,
            "runs": runs, "board_time": estimate}


def markdown(results):
    lines = ["| board | networks | batch | buffer | seeds reaching -200 | first step at -200 "
             "(per seed) | final eval return (per seed) | update on the board (est.) | "
             "to first reach -200 on the board (est., median) |",
             "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for r in results:
        firsts = [run["first_step_at_minus_200"] for run in r["runs"]]
        estimate = r.get("board_time") or []
        lines.append("| %s | %s | %d | %d | %d of %d | %s | %s | %s | %s |" % (
            r["board"], "x".join(map(str, r["learner"]["actor_hidden"])),
            r["learner"]["batch_size"], r["learner"]["buffer_capacity"],
            sum(f is not None for f in firsts), len(firsts),
            ", ".join("-" if f is None else str(f) for f in firsts),
            ", ".join("%.0f" % run["final_eval_return"] for run in r["runs"]),
            board_time.update_cell(estimate), board_time.solve_cell(estimate)))
        profile = load_profile(r["board"])
        for e in estimate:
            if "error" in e:
                notes.append("%s, %s: no estimate: %s" % (r["board"], e["backend"], e["error"]))
            elif e["solve"] is not None:
                notes.append("%s, %s: %s" % (r["board"], e["backend"],
                                             board_time.basis(e["solve"], profile)))
    if notes:
        lines += ["", "Estimated on-board time: instructions of the cost model (sim/cost.py, "
                  "fitted to bench-mcu on the profile's QEMU core) x the chip's cycles per "
                  "instruction (the profile's cpi range) / its clock. Basis:", ""]
        lines += ["- %s" % note for note in notes]
    used = {e["backend"] for r in results for e in r.get("board_time") or []}
    legend = ["- %s" % board_time.LABELS[b] for b in sorted(used & set(board_time.LABELS))]
    if legend:
        lines += [""] + legend
    return "\n".join(lines) + "\n"


def add_arguments(parser):
    parser.add_argument("--boards", nargs="*", default=None, help="profiles (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per board")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--out", default="bench/results")


def run(args):
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = [bench_profile(name, range(args.seeds), args.steps)
               for name in (args.boards or profile_names())]
    tmp = out / "boards.json.tmp"
    tmp.write_text(json.dumps({"solved_return": SOLVED_RETURN, "results": results}, indent=1))
    os.replace(tmp, out / "boards.json")
    (out / "boards.md").write_text(markdown(results))
    print(markdown(results))
    return 0
