"""Learning parity of the memory and speed options on the mirror: each against plain TD3.

Variants: the float replay buffer (the reference), compressed replay, the int8 acting actor,
prioritized replay, Adam with int16 moments, and the viper backend's int16-code products; each
trains the bench-learn settings (64x64, batch 100, float32), or with ``--board`` that board
profile's learner, on the same seeds. For each: the final evaluation return's mean, standard deviation, min and max over seeds, and
the median first step at which an evaluation reached -200. A variant is "within spread" when its mean
final return lies inside the reference's [min, max] over the seeds. Writes parity.json and parity.md.
"""

import json
import os
import statistics
import sys

from microrl_host.bench.learn import BENCH_DTYPE
from microrl_host.mirror.config import TD3Config
from microrl_host.progress import train_mirror

VARIANTS = {
    "float replay, float actor, uniform": {},
    "compressed replay": {"replay": "compressed"},
    "int8 acting actor": {"act_int8": True},
    "prioritized replay (K=4)": {"prioritized": True},
    "int16 Adam state": {"adam_state": "int16"},
    "int16 products (viper backend)": {"products": "int16"},
}


def _log(text):
    """Progress on stderr: stdout is the table, or the results with --json."""
    print(text, file=sys.stderr, flush=True)


def run_variant(fields, seeds, steps, progress=_log, base=None):
    """Each seed's run of the variant ``fields`` (TD3Config fields, and ``products`` for the
    mirror) over the learner ``base`` (TD3Config fields; None: bench-learn's)."""
    runs = []
    fields = dict(fields)
    products = fields.pop("products", "float")
    for seed in seeds:
        settings = dict(base or {}, seed=seed, total_steps=steps, eval_every=1000,
                        eval_episodes=10)
        settings.update(fields)
        config = TD3Config(**settings)
        out = train_mirror(config, BENCH_DTYPE, "  seed %d" % seed, products=products)
        runs.append({"seed": seed, "final_eval_return": out["final_eval_return"],
                     "first_step_at_minus_200": out["first_step_at_minus_200"],
                     "wall_s": round(out["wall_s"], 2)})
        progress("  seed %d: final %.1f, first at -200: %s, %.1f s"
                 % (seed, out["final_eval_return"], out["first_step_at_minus_200"],
                    out["wall_s"]))
    return runs


def summarize(runs):
    finals = [r["final_eval_return"] for r in runs]
    firsts = [r["first_step_at_minus_200"] for r in runs if r["first_step_at_minus_200"]]
    return {
        "mean": statistics.fmean(finals),
        "std": statistics.stdev(finals) if len(finals) > 1 else 0.0,
        "min": min(finals),
        "max": max(finals),
        "reached_minus_200": len(firsts),
        "first_step_median": statistics.median(firsts) if firsts else None,
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
    }


def markdown(results, seeds, steps, learner="64x64, batch 100"):
    ref = results[0]["summary"]
    lines = ["Mirror, %s, float32, %d steps, seeds %s." % (learner, steps, list(seeds)), "",
             "| variant | final return mean | std | min .. max | reached -200 | "
             "median first step at -200 | within reference spread | median wall s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["summary"]
        inside = ref["min"] <= s["mean"] <= ref["max"]
        lines.append("| %s | %.1f | %.1f | %.1f .. %.1f | %d of %d | %s | %s | %.2f |" % (
            r["variant"], s["mean"], s["std"], s["min"], s["max"], s["reached_minus_200"],
            len(r["runs"]), s["first_step_median"], "yes" if inside else "no",
            s["wall_s_median"]))
    return "\n".join(lines) + "\n"


def add_arguments(parser):
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--variant", action="append", choices=list(VARIANTS),
                        help="run only these variants (the reference always runs)")
    parser.add_argument("--board", default=None,
                        help="train this profile's learner (a name in boards/ or a .toml file) "
                             "instead of bench-learn's 64x64, batch 100")
    parser.add_argument("--out", default="runs/bench-parity")
    parser.add_argument("--json", action="store_true", help="print parity.json on stdout")


def run(args):
    seeds = range(args.seeds)
    names = list(VARIANTS)
    if args.variant:
        names = [names[0]] + [n for n in names[1:] if n in args.variant]
    base, learner = None, "64x64, batch 100"
    if args.board:
        from microrl_host.board.boards import resolve_board

        try:
            profile = resolve_board(args.board)
        except ValueError as e:
            print("microrl bench-parity: %s" % e, file=sys.stderr)
            return 2
        base = {k: v for k, v in profile.learner.items() if k != "total_steps"}
        learner = "%s learner (%s, batch %d)" % (
            profile.name, "x".join(map(str, base.get("critic_hidden", ()))),
            base.get("batch_size", 0))
    results = []
    for name in names:
        _log(name)
        runs = run_variant(VARIANTS[name], seeds, args.steps, base=base)
        results.append({"variant": name, "fields": VARIANTS[name], "runs": runs,
                        "summary": summarize(runs)})
    os.makedirs(args.out, exist_ok=True)
    table = markdown(results, seeds, args.steps, learner)
    with open(os.path.join(args.out, "parity.json"), "w") as f:
        json.dump({"steps": args.steps, "seeds": list(seeds), "results": results}, f, indent=1)
    with open(os.path.join(args.out, "parity.md"), "w") as f:
        f.write(table)
    print(json.dumps(results) if args.json else table)
    return 0
