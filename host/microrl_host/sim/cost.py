"""Instructions of the learner on a microcontroller core without QEMU: counts of the work in a
TD3 update, derived from the learner config, times coefficients per (QEMU core, backend) fitted to
bench-mcu measurements (sim/calibrate.py; the fit is cost_fit.json beside this module, so the model
works offline).

The counts follow device/microrl/td3.py, mlp.py and kernels_nd.py call by call, per update, on a
backend (pure, pyasm, ulab, vfp, viper: bench-mcu's; vfp is ulab with the products in kernels_vfp,
pyasm the pure-Python backend with its products, Adam and Polyak in machine code):

- ``mac``: multiply-adds of the products (forwards, the backward's parameter and input gradients)
  of every network the update runs, over the whole batch, dense (the pure-Python products skip zero
  terms, which the coefficient absorbs);
- ``elem``: elements touched outside the products' inner loops: the products' outputs and the
  operand entries the pure-Python products scan for zeros; bias, ReLU, tanh, the loss, the target;
- ``param``: parameter elements of the Adam steps and the target networks' Polyak updates;
- ``row``: batch rows handled one at a time in Python (the replay draw and decode, the smoothing
  noise); ``row_compressed``: the drawn rows again when the replay is compressed (a dearer decode:
  in Python on pure and viper, in one viper call on pyasm, ulab and vfp, compressed_viper.py, whose
  K.affine calls then scale the batch);
- ``call``: numerics kernel calls and network passes; ``op``: the array operations of those calls
  on ulab (``OPS``: KERNEL_OPS, and VFP_OPS on vfp, whose products make none), each an
  interpreter call into ulab that mostly makes an array object; micro-batches multiply both;
- ``update``: one per critic and one per actor-and-targets pass, their fixed costs;
- ``gc_mac``, ``gc_elem``, ``gc_op``: garbage collection. Collections per update go as the bytes an
  update allocates over the heap free after construction, and each sweeps the whole heap, so these
  are the allocating counts times heap / free heap, the free heap estimated from the learner's data
  bytes (sim/footprint.py without its code: the QEMU firmware holds microrl frozen in flash).

The model of a (core, backend) is instructions = sum of coefficient x count. The mean update is
((policy_delay - 1) x critic-only + full) / policy_delay; a Trainer.step past the warm-up is the
update / train_every plus an actor forward (its own fit on the batch-1 counts), an env step (the
median measured) and the store. The counts leave out prioritized replay, the int8 actor and int16
Adam: the model refuses those configs.
"""

import json
from pathlib import Path

from microrl_host.mirror.config import TD3Config
from microrl_host.sim import footprint

COUNTS = ("mac", "elem", "param", "row", "row_compressed", "call", "op", "update")
# Garbage collection: the work that allocates, times the heap over the heap free after
# construction (collections per update go as allocation / free, each sweeps the whole heap).
GC_COUNTS = {"gc_mac": ("mac",), "gc_elem": ("elem", "param"), "gc_op": ("op",)}
FEATURES = COUNTS + tuple(GC_COUNTS)
HEAP_USABLE = 125 / 128  # of MICROPY_HEAP_SIZE, the rest is the collector's tables
MIN_FREE = 0.02  # of the heap free after construction, below which the model gives no figure
FORWARD_FEATURES = ("mac", "elem", "op", "gc_mac", "gc_op")  # the actor forward's own fit
MODEL_PATH = Path(__file__).resolve().parent / "cost_fit.json"
NOT_MODELLED = ("prioritized", "act_int8")  # options whose extra work the counts leave out


class CostModelError(Exception):
    """No estimate: a config the model does not cover, or no fit for the core and backend."""


# The counts

def _sizes(config):
    return footprint.network_sizes(config)


def parameter_count(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


# Array operations of each kernel on ulab (device/microrl/kernels_nd.py): each is an interpreter
# call into ulab and most make an array object. (affine: its scaling; adding an offset is one more.)
KERNEL_OPS = {"dot": 1, "dot_tn": 3, "dot_nt": 2, "dot_nt_relu": 4, "add_bias": 1, "sum_rows": 2,
              "relu": 2, "tanh": 1, "tanh_grad": 4, "copy_cols": 3, "smooth_actions": 4,
              "minimum": 2, "td_target": 4, "mse_grad": 3, "fill": 1, "adam": 17, "polyak": 3,
              "sample": 0, "affine": 1}
# On vfp the products are kernels_vfp's assembler calls into the caller's buffers, none an array
# operation: a dense layer (dot, bias and ReLU) one call, the parameter gradients (x^T d and the
# column sums) two, the input gradient and the ReLU-masked delta one each.
# Adam there is two assembler calls too (kernels_asm.adam).
VFP_PRODUCTS = ("dot", "add_bias", "relu", "dot_tn", "sum_rows", "dot_nt", "dot_nt_relu")
VFP_OPS = dict(KERNEL_OPS, adam=0, **dict.fromkeys(VFP_PRODUCTS, 0))
# The operations counted per backend. pure and viper make no ulab operation, but their fits were
# made with ulab's table, whose counts stand there for the work of each kernel. "thumb" is ulab on
# a core without an FPU, whose products are kernels_thumb's assembler calls, as vfp's are
# kernels_vfp's (counted_backend).
# On pyasm (kernels_pyasm) the products, Adam, Polyak and affine are each one machine-code call;
# the rest stays Python loops, whose work the table's counts stand for as on pure.
PYASM_OPS = dict(VFP_OPS, polyak=0, affine=0)
OPS = {"pure": KERNEL_OPS, "pyasm": PYASM_OPS, "ulab": KERNEL_OPS, "vfp": VFP_OPS,
       "thumb": VFP_OPS, "viper": KERNEL_OPS}
MACHINE_DECODE = ("pyasm", "ulab", "vfp", "thumb")  # the backends that decode compressed replay
# in viper
THUMB_CORES = ("m0", "m3")  # QEMU cores without an FPU: ulab's products there are kernels_thumb's


def counted_backend(core, backend):
    """The backend whose counts a (core, bench backend) run follows: ulab on a core without an
    FPU computes its products with kernels_thumb ("thumb"); otherwise the backend itself."""
    return "thumb" if backend == "ulab" and core in THUMB_CORES else backend


def _ops(backend):
    """The operation table of ``backend``; CostModelError naming it when it is not a backend."""
    try:
        return OPS[backend]
    except KeyError:
        raise CostModelError("no counts for backend %r (backends: %s)"
                             % (backend, ", ".join(OPS))) from None


def _kernel(counts, backend, name, **work):
    """One K.<name> call and its work on ``backend``."""
    counts["call"] += 1
    counts["op"] += OPS[backend][name]
    for key, value in work.items():
        counts[key] += value


def _product(counts, backend, name, m, rows_in, cols_out, scanned, written):
    """One product: m x rows_in x cols_out multiply-adds, ``scanned`` operand entries looked at
    for zeros and ``written`` output elements."""
    _kernel(counts, backend, name, mac=m * rows_in * cols_out, elem=scanned + written)


def forward(counts, sizes, tanh, m, backend):
    """MLP.forward over m rows: per layer a product, the bias, ReLU (hidden) or tanh (output)."""
    layers = len(sizes) - 1
    for k in range(layers):
        a, b = sizes[k], sizes[k + 1]
        _product(counts, backend, "dot", m, a, b, m * a, m * b)
        _kernel(counts, backend, "add_bias", elem=m * b)
        if k < layers - 1:
            _kernel(counts, backend, "relu", elem=m * b)
        elif tanh:
            _kernel(counts, backend, "tanh", elem=m * b)
    counts["call"] += 1  # the pass itself


def backward(counts, sizes, tanh, m, param_grads, input_grad, backend):
    """MLP.backward over m rows: parameter gradients and/or the input gradient."""
    if tanh:
        _kernel(counts, backend, "tanh_grad", elem=m * sizes[-1])
    for k in range(len(sizes) - 2, -1, -1):
        a, b = sizes[k], sizes[k + 1]
        if param_grads:
            _product(counts, backend, "dot_tn", m, a, b, a * m, a * b)  # x^T d
            _kernel(counts, backend, "sum_rows", elem=m * b)
        if k > 0:
            _product(counts, backend, "dot_nt_relu", m, b, a, m * b, m * a)  # (d w^T) * (x > 0)
        elif input_grad:
            _product(counts, backend, "dot_nt", m, b, a, m * b, m * a)  # d w^T
    counts["call"] += 1


def _parts(config):
    n = config.batch_size
    rows = config.micro_batch or n
    return [min(rows, n - s) for s in range(0, n, rows)]


def _sample(counts, config, backend):
    """CompressedReplay.sample or Replay.sample: the draws; on ulab and vfp compressed_viper's
    decode, one viper call writing the codes into the batch and K.affine scaling obs, next_obs,
    sa, next_sa (each plus the centre where the environment's bounds have one) and the reward
    (times minus its step, plus the top of its range): 6 operations for the pendulum."""
    n = config.batch_size
    _kernel(counts, backend, "sample", row=n)
    if config.replay != "compressed":
        return
    counts["row_compressed"] += n
    if backend not in MACHINE_DECODE:
        return  # the decode in Python, per row
    counts["call"] += 1  # compressed_viper._codes
    obs, act = footprint.env_dims(config)
    centred = _centred(config)
    offset = OPS[backend]["affine"]  # adding an offset is one more of the scaling's operations
    for cols in (obs, obs, obs + act, obs + act):
        _kernel(counts, backend, "affine", elem=n * cols)
        counts["op"] += centred * offset
    _kernel(counts, backend, "affine", elem=n)
    counts["op"] += offset  # the reward's offset


def _centred(config):
    """1 when the environment's observation bounds have a centre other than 0 (compressed replay
    adds it when decoding), else 0."""
    from microrl_host.mirror.envs import make

    env = make(config.env)
    return int(any(lo + hi for lo, hi in zip(env.obs_low, env.obs_high)))


def critic_update_counts(config, backend, counts=None):
    """TD3.update_critic on ``backend``: a minibatch, the clipped double-Q target, both critics'
    steps."""
    _ops(backend)
    counts = counts if counts is not None else dict.fromkeys(COUNTS, 0)
    actor, critic = _sizes(config)
    _sample(counts, config, backend)
    for m in _parts(config):
        forward(counts, actor, True, m, backend)  # target actor
        _kernel(counts, backend, "smooth_actions", row=m, elem=m)  # a normal drawn per row
        forward(counts, critic, False, m, backend)
        _kernel(counts, backend, "copy_cols", elem=m)
        forward(counts, critic, False, m, backend)
        _kernel(counts, backend, "minimum", elem=m)
        _kernel(counts, backend, "td_target", elem=m)
    for _ in range(2):
        for m in _parts(config):
            forward(counts, critic, False, m, backend)
            _kernel(counts, backend, "mse_grad", elem=m)
            backward(counts, critic, False, m, True, False, backend)
        _kernel(counts, backend, "adam", param=parameter_count(critic))
    counts["update"] += 1
    return counts


def full_update_counts(config, backend):
    """The update of every policy_delay-th step on ``backend``: the critics', the actor's and the
    targets'."""
    counts = critic_update_counts(config, backend)
    actor, critic = _sizes(config)
    for m in _parts(config):
        forward(counts, actor, True, m, backend)
        _kernel(counts, backend, "copy_cols", elem=m)
        forward(counts, critic, False, m, backend)
        _kernel(counts, backend, "fill", elem=m)
        backward(counts, critic, False, m, False, True, backend)
        _kernel(counts, backend, "copy_cols", elem=m)
        backward(counts, actor, True, m, True, False, backend)
    _kernel(counts, backend, "adam", param=parameter_count(actor))
    for sizes in (actor, critic, critic):
        _kernel(counts, backend, "polyak", param=parameter_count(sizes))
    counts["update"] += 1
    return counts


def forward_counts(config, backend):
    """The actor's forward for one observation (TD3.policy) on ``backend``."""
    _ops(backend)
    counts = dict.fromkeys(COUNTS, 0)
    forward(counts, _sizes(config)[0], True, 1, backend)
    return counts


def update_macs(config):
    """Multiply-adds of a mean TD3 update (policy_delay from the config; the same on every
    backend)."""
    d = config.policy_delay
    return ((d - 1) * critic_update_counts(config, "ulab")["mac"]
            + full_update_counts(config, "ulab")["mac"]) / d


def as_config(learner):
    """A TD3Config from a dict of overrides, or the config itself."""
    return learner if isinstance(learner, TD3Config) else TD3Config.from_dict(dict(learner))


# The model

def measured(run, name):
    """The instructions of benchmark ``name`` in a bench-mcu run, or None."""
    bench = (run.get("summary") or {}).get("benchmarks", {}).get(name) or {}
    return bench.get("instructions")


def usable(run):
    """Whether a bench-mcu run measured everything the model is fitted to and checked on."""
    s = run.get("summary") or {}
    return not run.get("error") and s.get("update_mean_instructions") is not None and all(
        measured(run, name) is not None for name in ("actor_forward", "env_step", "trainer_step"))


def median(values):
    values = sorted(values)
    n = len(values)
    return (values[n // 2] + values[(n - 1) // 2]) / 2


def data_bytes(config):
    """The learner's own heap (networks, Adam, batch, replay): the footprint estimate without
    its code, which the QEMU firmware holds in flash."""
    return footprint.estimate_heap_bytes(config, 32) - footprint.code_bytes(config)


def free_bytes(config, heap_bytes, group):
    """The heap free after the learner's construction, estimated as the group's fit of it."""
    f = group["free_heap"]
    return HEAP_USABLE * heap_bytes - f["base_bytes"] - f["per_data_byte"] * data_bytes(config)


def features(counts, config, heap_bytes, group):
    """The model's features of one update's counts on a heap of ``heap_bytes``."""
    free = free_bytes(config, heap_bytes, group)
    if free < MIN_FREE * heap_bytes:
        raise CostModelError("the learner leaves about %d of %d heap bytes free after construction"
                             ": too few for the model (it may not fit at all)" % (free, heap_bytes))
    pressure = HEAP_USABLE * heap_bytes / free
    out = dict(counts)
    for name, parts in GC_COUNTS.items():
        out[name] = pressure * sum(counts[p] for p in parts)
    return out


_loaded = {}


def load_model(path=MODEL_PATH):
    """The committed fit (cost_fit.json), read once."""
    path = Path(path)
    if path not in _loaded:
        try:
            _loaded[path] = json.loads(path.read_text())
        except FileNotFoundError:
            raise CostModelError("no cost model at %s: run microrl bench-mcu --calibrate "
                                 "(sim/calibrate.py)" % path) from None
    return _loaded[path]


def check_modelled(config):
    """CostModelError when the config uses work the counts leave out."""
    used = [name for name in NOT_MODELLED if getattr(config, name)]
    if config.adam_state != "float":
        used.append("adam_state %s" % config.adam_state)
    if used:
        raise CostModelError("the cost model does not count %s (calibrated on plain TD3 with "
                             "float Adam)" % ", ".join(used))


def _group(model, core, backend):
    key = "%s-%s" % (core, backend)
    group = model["groups"].get(key)
    if group is None:
        raise CostModelError("the cost model has no fit for %s with %s (no group %s; fitted: %s):"
                             " bench-mcu --calibrate measures it" % (
                                 core, backend, key, ", ".join(sorted(model["groups"]))))
    return group


def predict(learner, core, backend, heap_bytes, model=None):
    """Instructions on QEMU core ``core`` (m0, m7) with ``backend`` (pure, pyasm, ulab, vfp, viper) and a
    heap of ``heap_bytes`` for a learner (a TD3Config or a dict of overrides): critic-only, full
    and mean update, Trainer.step past the warm-up, actor forward (batch 1) and env step."""
    config = as_config(learner)
    check_modelled(config)
    group = _group(model or load_model(), core, backend)
    c = group["coefficients"]

    def instructions(counts):
        x = features(counts, config, heap_bytes, group)
        return sum(c[f] * x[f] for f in FEATURES)
    counted = counted_backend(core, backend)
    critic = instructions(critic_update_counts(config, counted))
    full = instructions(full_update_counts(config, counted))
    d = config.policy_delay
    update = ((d - 1) * critic + full) / d
    f = group["actor_forward"]
    x = features(forward_counts(config, counted), config, heap_bytes, group)
    actor_forward = sum(f[name] * x[name] for name in FORWARD_FEATURES) + f["pass"]
    env_step = group["env_step_instructions"]
    store = group["store_%s_instructions" % config.replay]
    if store is None:
        store = group["store_float_instructions"]
    step = update / config.train_every + actor_forward + env_step + store
    return {"critic_update": critic, "full_update": full, "update": update, "trainer_step": step,
            "actor_forward": actor_forward, "env_step": env_step}


def relative_errors(model, run):
    """(model - measured) / measured for each of a bench-mcu run's measurements."""
    p = predict(run["learner"], run["core"], run["backend"], run["heap_bytes"], model)
    found = {name: measured(run, name) for name in
             ("critic_update", "full_update", "trainer_step", "actor_forward", "env_step")}
    found["update"] = run["summary"]["update_mean_instructions"]
    return {name: (p[name] - m) / m for name, m in found.items() if m}
