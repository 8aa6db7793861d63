"""The mirror against RLtools on the bench-learn job (`microrl bench-peers`, `make bench-peers`).

RLtools' Python package `tinyrl` compiles RLtools' TD3 loop with the system C++ compiler at first use
(from the headers in its wheel; cached in the temporary directory) against Debian's OpenBLAS when the
linker finds `-lblas` (libopenblas-dev), else as its generic build; the report says which ran. Both
learners train 64x64 networks with batch 100 for 10 000 steps of Pendulum-v1 and evaluate 10
deterministic episodes every 1000 steps, timed with those evaluations; seeds alternate which one runs
first. The settings tinyrl cannot match are listed in the report (`DIFFERENCES`).

RLtools runs in a worker process of its own: its module is built with -ffast-math, and loading it sets
flush-to-zero for the whole process, which would change the mirror's arithmetic (and its speed) if
both shared one. Each side's report says whether it flushes subnormals. The mirror runs its compiled
kernels (mirror/fused.py: numba, numpy's own BLAS) and the report names them. Writes peers.json,
peers.md.
"""

import argparse
import ctypes
import json
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

from microrl_host.bench.learn import BENCH_DTYPE, bench_config, warm_up
from microrl_host.mirror import fused
from microrl_host.mirror.train import SOLVED_RETURN
from microrl_host.progress import train_mirror

STEPS_PER_REPORT = 10000  # wall seconds are reported per this many environment steps
PEER_MODULE = "microrl_peers"  # tinyrl's interface name: its build cache key
DIFFERENCES = (
    "one Adam learning rate for actor and critics in tinyrl (1e-3; the mirror's critics use 2e-3)",
    "Adam's epsilon inside the square root in RLtools (EPSILON_SQRT, left at its default 1e-7)",
    "RLtools evaluates at steps 0, 1000, ..., 9000, the mirror at 1000, ..., 10 000 (10 each)",
    "tinyrl steps gymnasium's Pendulum-v1 (RescaleAction to [-1, 1]) through Python callbacks, "
    "the mirror its own Pendulum in Python (its evaluation episodes in one compiled step each); "
    "RLtools' final return is 10 more deterministic episodes after training (untimed)",
    "float32 both; RLtools is built with -O3 -march=native -ffast-math",
)


def peer_settings(config):
    """tinyrl TD3 compile-time parameters equal to the mirror's TD3Config where tinyrl has them."""
    return {
        "GAMMA": config.gamma, "ACTOR_BATCH_SIZE": config.batch_size,
        "CRITIC_BATCH_SIZE": config.batch_size, "CRITIC_TRAINING_INTERVAL": 1,
        "ACTOR_TRAINING_INTERVAL": config.policy_delay,
        "CRITIC_TARGET_UPDATE_INTERVAL": config.policy_delay,
        "ACTOR_TARGET_UPDATE_INTERVAL": config.policy_delay,
        "ACTOR_POLYAK": 1.0 - config.tau, "CRITIC_POLYAK": 1.0 - config.tau,
        "TARGET_NEXT_ACTION_NOISE_STD": config.policy_noise,
        "TARGET_NEXT_ACTION_NOISE_CLIP": config.noise_clip,
        "N_WARMUP_STEPS": config.learning_starts, "STEP_LIMIT": config.total_steps,
        "REPLAY_BUFFER_CAP": config.buffer_capacity,
        "ACTOR_HIDDEN_DIM": config.actor_hidden[0], "ACTOR_NUM_LAYERS": len(config.actor_hidden) + 1,
        "CRITIC_HIDDEN_DIM": config.critic_hidden[0],
        "CRITIC_NUM_LAYERS": len(config.critic_hidden) + 1,
        "EXPLORATION_NOISE": config.exploration_noise, "OPTIMIZER_ALPHA": config.actor_lr,
        "OPTIMIZER_BETA_1": config.adam_beta1, "OPTIMIZER_BETA_2": config.adam_beta2,
        "OPTIMIZER_EPSILON": config.adam_eps,
    }


def flushes_subnormals():
    """True when this thread's floating point flushes subnormal results to zero (FTZ)."""
    tiny = np.array([np.finfo(np.float32).tiny], np.float32)
    return bool((tiny * np.float32(0.5))[0] == 0.0)


def _loaded_libraries(pattern):
    """Real paths of the shared libraries of this process whose file name matches `pattern`."""
    found = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            if re.search(pattern, os.path.basename(path)) and path not in found:
                found.append(path)
    return found


def _openblas_core(path, symbols):
    """OpenBLAS's kernel name (e.g. "SkylakeX") from the loaded library at `path`, or None."""
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for name in symbols:
        function = getattr(lib, name, None)
        if function is not None:
            function.restype = ctypes.c_char_p
            return function().decode()
    return None


def mirror_blas():
    """numpy's BLAS: name, version and the OpenBLAS kernel it runs."""
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    libraries = _loaded_libraries(r"openblas")
    core = _openblas_core(libraries[0], ("scipy_openblas_get_corename64_",
                                         "scipy_openblas_get_corename", "openblas_get_corename")
                          ) if libraries else None
    return {"name": blas.get("name"), "version": blas.get("version"), "core": core}


def run_mirror(seed, steps):
    """One mirror run of the bench-learn job: wall and CPU seconds, final return, curve."""
    config = bench_config(seed, steps)
    cpu_s = time.process_time()
    out = train_mirror(config, BENCH_DTYPE, "mirror seed %d" % seed)
    cpu_s = time.process_time() - cpu_s
    return {"wall_s": round(out["wall_s"], 3), "cpu_s": round(cpu_s, 3),
            "eval_return": out["final_eval_return"], "eval_curve": out["eval_returns"],
            "first_step_at_minus_200": out["first_step_at_minus_200"]}


# ---- the RLtools side, in its worker process ----------------------------------------------------

_EVAL_LINE = re.compile(r"Step: (\d+)/\d+ Mean return: (\S+)")


class _EnvFactory:
    """Pendulum-v1 with actions in [-1, 1] (RLtools' convention); each environment it makes is
    seeded once, so a run's starts are reproducible."""

    def __init__(self):
        self.seed = 0
        self.made = 0

    def __call__(self):
        import gymnasium as gym

        env = gym.wrappers.RescaleAction(gym.make("Pendulum-v1"), -1.0, 1.0)
        env.reset(seed=1000 * self.seed + self.made)
        self.made += 1
        return env


def _evaluate_peer(state, factory, seed, episodes, episode_steps):
    env = factory()
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=10_000 + 100 * seed + episode)
        total = 0.0
        for _ in range(episode_steps):
            obs, reward, _, _, _ = env.step(state.action(np.asarray(obs, np.float32)))
            total += float(reward)
        returns.append(total)
    return sum(returns) / episodes


def _peer_build_info(module_name):
    """Which backend tinyrl compiled in and which BLAS library the loaded module uses."""
    from tinyrl import CACHE_PATH

    with open(os.path.join(CACHE_PATH, "build", module_name, "cmd.txt")) as f:
        command = f.read()
    backend = "generic"
    for flag, name in (("RL_TOOLS_BACKEND_ENABLE_MKL", "MKL"),
                       ("RL_TOOLS_BACKEND_ENABLE_OPENBLAS", "OpenBLAS")):
        if flag in command:
            backend = name
    libraries = _loaded_libraries(r"^lib(open)?blas")
    core = _openblas_core(libraries[0], ("openblas_get_corename",)) if libraries else None
    flags = [f for f in ("-O3", "-march=native", "-ffast-math") if f in command]
    return {"backend": backend, "blas_libraries": libraries, "core": core, "flags": flags}


def _peer_worker(connection, config_fields, episode_steps):
    """Worker process: build tinyrl's TD3 once, then answer ("run", seed) until ("stop",)."""
    from microrl_host.mirror.config import TD3Config

    config = TD3Config.from_dict(config_fields)
    warnings.filterwarnings("ignore", message=".*precision lowered by casting")  # gymnasium's Box
    try:
        import tinyrl
        from importlib.metadata import version
    except ImportError as e:
        connection.send({"error": "tinyrl is not installed (make bench-peers installs "
                                  "requirements-bench.txt): %s" % e})
        return
    factory = _EnvFactory()
    started = time.perf_counter()
    log = tempfile.TemporaryFile(mode="w+")
    with _stdout_to(log):
        loop = tinyrl.TD3(factory, interface_name=PEER_MODULE, enable_evaluation=True,
                          evaluation_interval=config.eval_every,
                          num_evaluation_episodes=config.eval_episodes,
                          **peer_settings(config))
    info = _peer_build_info("tinyrl_td3_" + PEER_MODULE)
    info.update({"tinyrl": version("tinyrl"), "build_s": round(time.perf_counter() - started, 1),
                 "flushes_subnormals": flushes_subnormals()})
    connection.send(info)
    while True:
        message = connection.recv()
        if message[0] != "run":
            return
        seed = message[1]
        factory.seed, factory.made = seed, 0
        state = loop.State(seed)
        log.seek(0)
        log.truncate()
        with _stdout_to(log):
            wall_s, cpu_s = time.perf_counter(), time.process_time()
            while not state.step():
                pass
            wall_s, cpu_s = time.perf_counter() - wall_s, time.process_time() - cpu_s
        log.seek(0)
        curve = [[int(s), float(r)] for s, r in _EVAL_LINE.findall(log.read())]
        final = _evaluate_peer(state, factory, seed, config.eval_episodes, episode_steps)
        first = next((s for s, r in curve + [[config.total_steps, final]] if r >= SOLVED_RETURN),
                     None)
        connection.send({"wall_s": round(wall_s, 3), "cpu_s": round(cpu_s, 3),
                         "eval_return": final, "eval_curve": curve,
                         "first_step_at_minus_200": first})
        del state


class _stdout_to:
    """Point file descriptor 1 (where RLtools' C++ logging goes) at `file` for a while."""

    def __init__(self, file):
        self.file = file

    def __enter__(self):
        sys.stdout.flush()
        self.saved = os.dup(1)
        os.dup2(self.file.fileno(), 1)

    def __exit__(self, *exc):
        sys.stdout.flush()
        os.dup2(self.saved, 1)
        os.close(self.saved)


class PeerProcess:
    """tinyrl's TD3 in a worker process; `run(seed)` returns what `run_mirror` returns."""

    def __init__(self, steps, timeout_s=600.0):
        config = bench_config(0, steps)
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_peer_worker,
                                        args=(child, config.to_dict(), config.episode_length()),
                                        daemon=True)
        self._process.start()
        self.timeout_s = timeout_s
        self.info = self._receive()

    def _receive(self):
        if not self._connection.poll(self.timeout_s):
            raise RuntimeError("the tinyrl worker did not answer within %.0f s" % self.timeout_s)
        reply = self._connection.recv()
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def run(self, seed):
        self._connection.send(("run", seed))
        return self._receive()

    def close(self):
        if self._process.is_alive():
            self._connection.send(("stop",))
        self._process.join(10)


# ---- the benchmark ------------------------------------------------------------------------------

def run_bench_peers(out_dir, seeds=(0, 1, 2, 3, 4), steps=10000, peer=None, progress=print):
    """Both learners on every seed, alternating which goes first; writes peers.json and peers.md."""
    os.makedirs(out_dir, exist_ok=True)
    progress("building tinyrl's TD3 (cached after the first build) ...")
    peer = peer or PeerProcess(steps)
    try:
        progress("tinyrl %s: %s build, %s, %.1f s to build or load"
                 % (peer.info["tinyrl"], peer.info["backend"],
                    ", ".join(peer.info["blas_libraries"]) or "no BLAS library",
                    peer.info["build_s"]))
        warm_up_s = warm_up()
        progress("mirror: kernels loaded, a warm-up run of %.2f s" % warm_up_s)
        runs = {"mirror": [], "rltools": []}
        for i, seed in enumerate(seeds):
            order = ("mirror", "rltools") if i % 2 == 0 else ("rltools", "mirror")
            for name in order:
                result = run_mirror(seed, steps) if name == "mirror" else peer.run(seed)
                runs[name].append(dict(seed=seed, steps=steps, **result))
                progress("seed %d %-7s: %.2f s wall (%.2f s CPU), final return %.1f"
                         % (seed, name, result["wall_s"], result["cpu_s"], result["eval_return"]))
    finally:
        peer.close()
    config = bench_config(0, steps)
    doc = {
        "steps": steps, "seeds": list(seeds),
        "mirror": {"dtype": np.dtype(BENCH_DTYPE).name, "numpy": np.__version__,
                   "kernels": "numba " + fused.numba.__version__ if fused.active() else None,
                   "warm_up_s": round(warm_up_s, 3),
                   "blas": mirror_blas(), "flushes_subnormals": flushes_subnormals(),
                   "config": config.to_dict(), "summary": summarize(runs["mirror"], steps),
                   "runs": runs["mirror"]},
        "rltools": {"build": peer.info, "settings": peer_settings(config),
                    "summary": summarize(runs["rltools"], steps), "runs": runs["rltools"]},
        "differences": list(DIFFERENCES),
        "environment": {name: os.environ.get(name) for name in
                        ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE",
                         "OPENBLAS_L2_SIZE")},
    }
    with open(os.path.join(out_dir, "peers.json"), "w") as f:
        json.dump(doc, f, indent=1)
    text = markdown(doc)
    with open(os.path.join(out_dir, "peers.md"), "w") as f:
        f.write(text)
    progress(text)
    return doc


def summarize(runs, steps):
    """Median and range of the seconds per STEPS_PER_REPORT steps and of the final return."""
    scale = STEPS_PER_REPORT / steps
    wall = [r["wall_s"] * scale for r in runs]
    cpu = [r["cpu_s"] * scale for r in runs]
    returns = [r["eval_return"] for r in runs]
    return {"wall_s_median": statistics.median(wall), "wall_s_min": min(wall),
            "wall_s_max": max(wall), "cpu_s_median": statistics.median(cpu),
            "eval_return_median": statistics.median(returns), "eval_return_min": min(returns),
            "eval_return_max": max(returns),
            "solved_runs": sum(r >= SOLVED_RETURN for r in returns), "runs": len(runs)}


def markdown(doc):
    build = doc["rltools"]["build"]
    blas = doc["mirror"]["blas"]
    lines = ["# The mirror against RLtools (tinyrl %s) on the bench-learn job" % build["tinyrl"], "",
             "%d steps of Pendulum-v1, 64x64 networks, batch 100, float32, 10 evaluation episodes "
             "every 1000 steps (timed), seeds %s; seconds per %d steps."
             % (doc["steps"], ", ".join(map(str, doc["seeds"])), STEPS_PER_REPORT), "",
             "| learner | build | wall s median | wall s min-max | CPU s median | final return "
             "median | final return min-max | runs at >= -200 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    kernels = doc["mirror"].get("kernels")
    rows = (("mirror", "numpy %s%s, %s %s (%s)" % (doc["mirror"]["numpy"],
                                                   " + %s kernels" % kernels if kernels else "",
                                                   blas["name"], blas["version"], blas["core"])),
            ("rltools", "%s %s (%s), %s" % (build["backend"], ", ".join(build["blas_libraries"]),
                                            build["core"], " ".join(build["flags"]))))
    for name, label in rows:
        s = doc[name]["summary"]
        lines.append("| %s | %s | %.2f | %.2f-%.2f | %.2f | %.1f | %.1f to %.1f | %d/%d |" % (
            "mirror" if name == "mirror" else "RLtools", label, s["wall_s_median"],
            s["wall_s_min"], s["wall_s_max"], s["cpu_s_median"], s["eval_return_median"],
            s["eval_return_min"], s["eval_return_max"], s["solved_runs"], s["runs"]))
    lines += ["", "| seed | mirror wall s | RLtools wall s | mirror return | RLtools return | "
              "mirror first at -200 | RLtools first at -200 |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for m, r in zip(doc["mirror"]["runs"], doc["rltools"]["runs"]):
        lines.append("| %d | %.2f | %.2f | %.1f | %.1f | %s | %s |" % (
            m["seed"], m["wall_s"], r["wall_s"], m["eval_return"], r["eval_return"],
            _step(m["first_step_at_minus_200"]), _step(r["first_step_at_minus_200"])))
    lines += ["", "Subnormals flushed to zero: mirror %s, RLtools %s (its own process)."
              % (_yes(doc["mirror"]["flushes_subnormals"]), _yes(build["flushes_subnormals"])),
              "", "Before the timed runs: RLtools built or loaded in %.1f s, the mirror's kernels "
              "loaded by a warm-up run of %.2f s." % (build["build_s"],
                                                     doc["mirror"].get("warm_up_s", 0.0)),
              "", "What differs:", ""] + ["- " + d for d in doc["differences"]]
    return "\n".join(lines) + "\n"


def _step(step):
    return "-" if step is None else str(step)


def _yes(flag):
    return "yes" if flag else "no"


def add_arguments(parser):
    parser.add_argument("--out", default="bench/results", help="output directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=10000)


def run(args):
    run_bench_peers(args.out, tuple(args.seeds), args.steps)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
