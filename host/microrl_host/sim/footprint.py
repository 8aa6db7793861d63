"""How much MicroPython heap a learner config needs, before anything is allocated.

The model counts what the device code allocates (docs/ALGORITHM.md): six networks' parameters,
Adam's two moments and the gradients of the three trained networks (the twin critics share one
gradient set), the activations of one actor and one critic workspace for the batch (or
micro-batch), the minibatch matrices (Adam's moments in int16 when the config asks), and the
replay buffer at 36 bytes per pendulum transition (10 for the compressed layout; other
environments by their dimensions), plus the sum tree of prioritized replay and the int8 copy of
the actor when the config asks for them. ``BASE_BYTES`` is what the package's code and the
interpreter's own objects take when the modules are imported as .mpy files; it was measured with
``gc.mem_alloc()`` on the unix port (64-bit objects), which makes the estimate a little
pessimistic for a 32-bit board and very pessimistic for firmware with microrl frozen in.
"""

BASE_BYTES = 60 * 1024  # .mpy code and interpreter objects, measured on the unix port
# The code of each optional module, imported only when configured (.mpy on the unix port).
OPTION_CODE_BYTES = {"compressed": 6700, "prioritized": 7900, "act_int8": 4200}
# The pure-Python products' scratch (kernels_py.scratch_row), per network group (actor, critics):
# a boxed float and two list slots per entry, measured on the unix port.
SCRATCH_BYTES_PER_ENTRY = 48
HEADROOM = 1.10  # construction needs room for transient copies on a fragmented heap


def env_dims(config):
    """(obs_dim, act_dim) of the config's built-in environment (the pendulum's: 3, 1)."""
    from microrl_host.mirror.envs import make

    env = make(getattr(config, "env", "pendulum"))
    return env.obs_dim, env.act_dim


def network_sizes(config):
    """The layer sizes of the actor and of each critic for ``config`` and its environment."""
    obs_dim, act_dim = env_dims(config)
    return ((obs_dim,) + tuple(config.actor_hidden) + (act_dim,),
            (obs_dim + act_dim,) + tuple(config.critic_hidden) + (1,))


def transition_bytes(config):
    """Replay bytes per transition: float32 obs, action, reward, next obs and done (36 for the
    pendulum), or the compressed layout's int16 codes of obs, action and reward (10)."""
    obs_dim, act_dim = env_dims(config)
    if getattr(config, "replay", "float") == "compressed":
        return 2 * (obs_dim + act_dim + 1)
    return 4 * (2 * obs_dim + act_dim + 2)


def parameter_count(sizes):
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def learner_floats(config):
    """Floats the learner allocates for ``config`` (a TD3Config of either side)."""
    actor, critic = network_sizes(config)
    obs_dim, act_dim = actor[0], actor[-1]
    p_a = parameter_count(actor)
    p_c = parameter_count(critic)
    params = 2 * p_a + 4 * p_c  # online and target networks
    adam = 2 * (p_a + 2 * p_c)  # first and second moments of actor and both critics
    if getattr(config, "adam_state", "float") == "int16":
        adam = 0  # int16 codes, counted in bytes by estimate_heap_bytes
    grads = p_a + p_c  # the critics share one gradient set
    n = config.batch_size
    rows = getattr(config, "micro_batch", 0) or n  # the networks' buffers hold a micro-batch
    activations = rows * (sum(actor[1:]) + sum(critic[1:]))
    input_grads = rows * (obs_dim + obs_dim + act_dim)
    batch = n * (2 * obs_dim + 2 * (obs_dim + act_dim) + 2) + n + 2 * rows + obs_dim
    return params + adam + grads + activations + input_grads + batch


def sum_tree_nodes(capacity, k):
    """Nodes of a K-ary sum tree over ``capacity`` leaves, stored level by level."""
    nodes, n = capacity, capacity
    while n > 1:
        n = (n + k - 1) // k
        nodes += n
    return nodes


def replay_bytes(config, float_bits):
    """The replay buffer, and its sum tree under prioritized replay."""
    total = transition_bytes(config) * config.buffer_capacity
    if getattr(config, "prioritized", False):
        total += sum_tree_nodes(config.buffer_capacity, config.per_k) * float_bits // 8
    return total


def estimate_heap_bytes(config, float_bits):
    """Estimated live heap of a constructed learner, code included, in bytes."""
    extra = 0
    actor, critic = network_sizes(config)
    if getattr(config, "act_int8", False):  # int8 weights, float biases
        extra = parameter_count(actor) * (1 + float_bits // 8) + OPTION_CODE_BYTES["act_int8"]
    if getattr(config, "replay", "float") == "compressed":
        extra += OPTION_CODE_BYTES["compressed"]
    if getattr(config, "prioritized", False):
        extra += OPTION_CODE_BYTES["prioritized"]
    if getattr(config, "adam_state", "float") == "int16":  # two int16 codes per parameter
        extra += 4 * (parameter_count(actor) + 2 * parameter_count(critic))
    rows = getattr(config, "micro_batch", 0) or config.batch_size
    widths = tuple(config.actor_hidden) + tuple(config.critic_hidden) + (critic[0], rows)
    extra += 2 * max(widths) * SCRATCH_BYTES_PER_ENTRY
    return (learner_floats(config) * float_bits // 8 + replay_bytes(config, float_bits)
            + extra + BASE_BYTES)


def code_bytes(config):
    """The part of the estimate that is code (the package and the optional modules configured)."""
    extra = sum(OPTION_CODE_BYTES[name] for name, used in (
        ("compressed", getattr(config, "replay", "float") == "compressed"),
        ("prioritized", getattr(config, "prioritized", False)),
        ("act_int8", getattr(config, "act_int8", False))) if used)
    return BASE_BYTES + extra


def check_fits(config, float_bits, heap_bytes, board, frozen=False):
    """Raise ValueError naming the heap needed and the heap the board has when it cannot fit.
    ``frozen``: the board's firmware holds microrl's code in flash, so the code is not counted."""
    need = estimate_heap_bytes(config, float_bits) - (code_bytes(config) if frozen else 0)
    need = int(need * HEADROOM)
    if need > heap_bytes:
        raise ValueError(
            "config does not fit board %s: it needs about %d bytes of heap (%.0f KB), the profile "
            "has %d bytes (%.0f KB); shrink buffer_capacity, batch_size or the hidden widths"
            % (board, need, need / 1024, heap_bytes, heap_bytes / 1024))
    return need
