"""What the board does at boot, read from its settings file ``microrl.json``.

``{"mode": "serve" | "train", "config": {TD3Config overrides}, "steps": N, "seed": S,
"weights": "actor.bin", "resume": true | false, "backend": "viper" | "python" | "ulab",
"vfp": true | false, "asm": true | false}``, every key optional (a missing file means all
defaults: serve).
- ``backend`` forces the numerics backend (``backend.py``; a board has no environment variable
  MICRORL_BACKEND): ``main`` passes it on before any module loads the kernels, and ``hello``
  reports it as the backend's reason.
- ``vfp``: false keeps ulab's own products where kernels_vfp would compute them (a Thumb-2 core
  with an FPU); ``hello`` reports which did as ``products``.
- ``asm``: false computes without kernels_asm's machine code on every backend (what firmware
  without an inline assembler runs: the pure-Python backend's plain loops, ulab's own products).
- ``train``: trains ``steps`` steps (default: the config's ``total_steps``) on its own, prints one JSON
  line per episode and per evaluation, and saves the trained actor to the weights file on flash
  (checked writable first: a CircuitPython board's flash is read-only to code while its drive is
  mounted over USB, see weights.READ_ONLY_HELP).
  With ``checkpoint_every`` set it checkpoints the run (checkpoint.py) and at boot resumes from the
  newest valid checkpoint, or starts afresh when there is none; ``"resume": true`` requires one
  (an error otherwise), ``false`` always starts afresh.
  A divergence (a NaN or an infinity in an update) goes back to the newest checkpoint and prints
  a ``diverged`` line (guard.py), or stops the run with the error when there is none.
- ``serve``: answers the board protocol on the USB serial (see ``serve.py``).
"""

import json

SETTINGS_FILE = "microrl.json"
MODES = ("serve", "train")
_KEYS = ("mode", "config", "steps", "seed", "weights", "board", "resume", "backend", "vfp",
         "asm")
BACKENDS = ("ulab", "numpy", "viper", "python")  # backend.py's choices


def load_settings(path=SETTINGS_FILE):
    """The settings dict; defaults when the file does not exist, ValueError when it is wrong."""
    try:
        f = open(path)
    except OSError:  # no settings file: all defaults
        return {"mode": "serve"}
    with f:
        settings = json.load(f)
    if not isinstance(settings, dict):
        raise ValueError("%s must hold a JSON object" % path)
    for key in settings:
        if key not in _KEYS:
            raise ValueError("%s: unknown key %r (known: %s)" % (path, key, ", ".join(_KEYS)))
    if settings.get("mode", "serve") not in MODES:
        raise ValueError("%s: mode must be serve or train, got %r" % (path, settings.get("mode")))
    if settings.get("resume") not in (None, True, False):
        raise ValueError("%s: resume must be true or false, got %r" % (path, settings["resume"]))
    for key in ("vfp", "asm"):
        value = settings.get(key)
        if not (value is None or value is True or value is False):  # 0 and 1 are not booleans
            raise ValueError("%s: %s must be true or false, got %r" % (path, key, value))
    if settings.get("backend") not in (None,) + BACKENDS:
        raise ValueError("%s: backend must be one of %s, got %r"
                         % (path, ", ".join(BACKENDS), settings["backend"]))
    return settings


def choose_backend(settings):
    """Passes the settings' "backend", "vfp" and "asm" on to backend.py, which reads them when it first
    loads; an error when other kernels are loaded already (something imported them earlier)."""
    choice = settings.get("backend")
    import sys
    import microrl
    if settings.get("vfp") is not None:
        microrl.VFP_CHOICE = settings["vfp"]
    if settings.get("asm") is not None:
        microrl.ASM_CHOICE = settings["asm"]
    if choice is None:
        return
    loaded = sys.modules.get("microrl.backend")
    if loaded is not None and loaded.NAME != choice:
        raise ValueError("backend %r asked for, but the %s backend is loaded already"
                         % (choice, loaded.NAME))
    microrl.BACKEND_CHOICE = choice


def _print_line(event, fields):
    fields["event"] = event
    print(json.dumps(fields))


def train_mode(settings):
    """Train on the board alone, then save the actor; returns the run's summary dict."""
    from .config import TD3Config
    from .protocol import finite
    from .train import Trainer, train
    from .weights import check_writable, save

    path = settings.get("weights") or "actor.bin"
    check_writable(path)  # a read-only flash fails now, not after the whole run
    overrides = dict(settings.get("config") or {})
    if settings.get("seed") is not None:
        overrides["seed"] = settings["seed"]
    if settings.get("steps") is not None:
        overrides["total_steps"] = settings["steps"]
    config = TD3Config(**overrides)

    def on_episode(episode, step, episode_return):
        _print_line("episode", {"episode": episode, "step": step, "return": finite(episode_return)})

    def on_eval(step, mean_return):
        _print_line("eval", {"step": step, "mean_return": finite(mean_return)})

    trainer = Trainer(config)
    trainer.on_diverge = lambda report: _print_line("diverged", report)  # restored (guard.py)
    wanted = settings.get("resume")
    if wanted or (wanted is None and config.checkpoint_every):
        from .checkpoint import CheckpointError, resume
        try:
            _print_line("resumed", resume(trainer))
        except CheckpointError as e:
            if wanted:
                raise
            _print_line("fresh", {"why": str(e)})
    result = train(config, on_episode, on_eval, trainer)
    size = save(path, result["agent"].actor.params)
    summary = {"steps": result["steps"], "final_eval_return": finite(result["final_eval_return"]),
               "weights": path, "bytes": size}
    _print_line("done", dict(summary))
    return summary


def start(settings):
    """Trains or serves as ``settings`` say (the dict of a microrl.json)."""
    choose_backend(settings)
    if settings.get("mode", "serve") == "train":
        train_mode(settings)
    else:
        from .serve import Server
        Server(settings).serve()


def main(path=SETTINGS_FILE):
    start(load_settings(path))
