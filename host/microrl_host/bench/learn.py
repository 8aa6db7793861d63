"""Learning benchmark of the host mirror: TD3 on the pendulum, several seeds, wall time and return.

Each run trains 64x64 networks with batch 100 for `steps` env steps and evaluates 10 deterministic
episodes every 1000 steps; the wall time includes those evaluations. Writes `learn.json` and
`learn_curve.png` to `out_dir`, prints a summary table, and fails when a rerun of the first seed
does not reproduce its result exactly. Run it single-threaded (OPENBLAS_NUM_THREADS=1): the
matrices are small, and BLAS threads only add overhead on them.
"""

import argparse
import dataclasses
import json
import os
import statistics

import numpy as np

from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.train import SOLVED_RETURN
from microrl_host.progress import train_mirror

BENCH_DTYPE = np.float32  # float32 halves the matmul time; tests/test_mirror_td3.py bounds its error


def bench_config(seed, steps):
    """The benchmark settings: the TD3Config defaults (64x64, batch 100) for `steps` env steps."""
    return TD3Config(seed=seed, total_steps=steps, eval_every=1000, eval_episodes=10)


def run_one(seed, steps, dtype=BENCH_DTYPE, desc=None):
    """One training run; returns (run, result): the run's description and its measured outcome.
    ``desc``: show a progress bar with this name while it trains."""
    out = train_mirror(bench_config(seed, steps), dtype, desc or "", enabled=desc is not None)
    run = {"seed": seed, "steps": steps}
    result = {
        "wall_s": round(out["wall_s"], 3),
        "eval_return": out["final_eval_return"],
        "first_step_at_minus_200": out["first_step_at_minus_200"],
        "eval_curve": out["eval_returns"],
    }
    return run, result


def warm_up(dtype=BENCH_DTYPE):
    """A short run (100 updates and an evaluation) before the timed ones, which loads the mirror's
    compiled kernels (mirror/fused.py, from numba's cache or compiled once) as RLtools is built
    before its runs; returns its wall seconds."""
    from microrl_host.mirror.train import train

    return train(dataclasses.replace(bench_config(0, 600), eval_episodes=2), dtype)["wall_s"]


def run_bench_learn(out_dir, seeds=(0, 1, 2, 3, 4), steps=10000, check_repeat=True):
    """Train one run per seed, write learn.json and learn_curve.png, print and return the summary."""
    os.makedirs(out_dir, exist_ok=True)
    warm_up_s = warm_up()
    print(f"kernels loaded: a warm-up run of {warm_up_s:.2f} s", flush=True)
    runs = []
    for i, seed in enumerate(seeds):
        run, result = run_one(seed, steps, desc=f"[{i + 1}/{len(seeds)}] seed {seed}")
        runs.append({**run, **result})
        print(f"seed {seed}: {result['wall_s']:.2f} s, eval return {result['eval_return']:.1f}, "
              f"first at -200: {result['first_step_at_minus_200']}", flush=True)
    repeat = None
    if check_repeat and runs:
        first = runs[0]
        _, again = run_one(first["seed"], steps, desc=f"repeat check: seed {first['seed']} again")
        repeat = {"seed": first["seed"], "wall_s": again["wall_s"],
                  "reproduced": again["eval_curve"] == first["eval_curve"]}
        if not repeat["reproduced"]:
            raise RuntimeError(f"seed {first['seed']} did not reproduce its evaluation curve: "
                               f"{first['eval_curve']} then {again['eval_curve']}")
        print(f"repeat check: seed {first['seed']} again, {again['wall_s']:.2f} s, the same "
              f"evaluation curve ({len(again['eval_curve'])} evaluations, exactly equal)",
              flush=True)
    config = bench_config(seeds[0] if seeds else 0, steps).to_dict()
    config.pop("seed")
    config["dtype"] = np.dtype(BENCH_DTYPE).name
    config["seeds"] = list(seeds)
    report = {"config": config, "runs": runs, "summary": _summary(runs), "repeat_check": repeat,
              "warm_up_s": round(warm_up_s, 3)}
    with open(os.path.join(out_dir, "learn.json"), "w") as f:
        json.dump(report, f, indent=1)
    _plot(runs, os.path.join(out_dir, "learn_curve.png"))
    _print_table(runs, report["summary"])
    return report


def _summary(runs):
    walls = [r["wall_s"] for r in runs]
    returns = [r["eval_return"] for r in runs]
    return {
        "wall_s_median": statistics.median(walls) if walls else None,
        "wall_s_min": min(walls, default=None),
        "wall_s_max": max(walls, default=None),
        "eval_return_median": statistics.median(returns) if returns else None,
        "solved_runs": sum(ret >= SOLVED_RETURN for ret in returns),
        "runs": len(runs),
    }


def _print_table(runs, summary):
    print(f"{'seed':>4} {'steps':>6} {'wall_s':>7} {'eval_return':>12} {'first_at_-200':>14}")
    for r in runs:
        first = "-" if r["first_step_at_minus_200"] is None else r["first_step_at_minus_200"]
        print(f"{r['seed']:>4} {r['steps']:>6} {r['wall_s']:>7.2f} {r['eval_return']:>12.1f} "
              f"{first:>14}")
    print(f"wall_s median {summary['wall_s_median']:.2f} (min {summary['wall_s_min']:.2f}, "
          f"max {summary['wall_s_max']:.2f}); eval return median "
          f"{summary['eval_return_median']:.1f}; runs at >= {SOLVED_RETURN:.0f}: "
          f"{summary['solved_runs']}/{summary['runs']}")


def _plot(runs, path):
    from microrl_host.sim.plots import mark_solved, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in runs:
        steps, returns = zip(*r["eval_curve"]) if r["eval_curve"] else ((), ())
        ax.plot(steps, returns, marker="o", label=f"seed {r['seed']}")
    mark_solved(ax)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean return, 10 deterministic episodes")
    ax.set_title("TD3 host mirror on Pendulum-v1 (64x64, batch 100)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_arguments(parser):
    parser.add_argument("--out", default="bench/results", help="output directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--no-repeat-check", action="store_true",
                        help="skip rerunning the first seed to check it reproduces")


def run(args):
    run_bench_learn(args.out, tuple(args.seeds), args.steps, not args.no_repeat_check)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
