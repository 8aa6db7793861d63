"""The learner's settings: one typed config, one line of doc per field, the TD3 paper's names."""

# Each field then its default, in one flat tuple (a tuple per field would cost a board 1 KB more
# heap); the comment is its doc. (Doc strings would cost heap on a board.)
_FIELDS = (
    "actor_hidden", (64, 64),      # hidden layer widths of the actor
    "critic_hidden", (64, 64),     # hidden layer widths of each critic
    "batch_size", 100,             # transitions per minibatch
    "micro_batch", 0,              # rows per network pass, summed into the batch's gradient
                                   # (0: the whole batch); smaller needs less activation memory
    "buffer_capacity", 10000,      # replay buffer capacity in transitions
    "gamma", 0.99,                 # discount factor
    "tau", 0.02,                   # Polyak rate of the target networks
    "actor_lr", 1e-3,              # Adam learning rate of the actor
    "critic_lr", 2e-3,             # Adam learning rate of the critics
    "adam_beta1", 0.9,             # Adam first-moment decay
    "adam_beta2", 0.999,           # Adam second-moment decay
    "adam_eps", 1e-8,              # Adam denominator epsilon
    "adam_state", "float",         # Adam moments: float, or int16 codes with per-tensor scales
    "policy_noise", 0.2,           # std of target policy smoothing noise, normalised action units
    "noise_clip", 0.5,             # clip of the target policy smoothing noise
    "exploration_noise", 0.1,      # std of the Gaussian exploration noise
    "policy_delay", 2,             # critic updates per actor and target update
    "learning_starts", 500,        # warm-up steps of uniform random actions before any update
    "train_every", 1,              # env steps per TD3 update after the warm-up
    "episode_updates", 0,          # 0: update during episodes (every train_every steps);
                                   # N: no updates inside an episode, N after each one ends
    "env", "pendulum",             # built-in environment: pendulum or servo
    "episode_steps", 0,            # steps per episode before truncation (0: the environment's)
    "total_steps", 10000,          # environment steps of a training run
    "eval_every", 1000,            # steps between deterministic evaluations (0: only at the end)
    "eval_episodes", 10,           # episodes per deterministic evaluation
    "seed", 0,                     # seed of the random generator
    "replay", "float",             # replay rows: float (float32) or compressed (int16, 10 B)
    "act_int8", False,             # explore with an int8 copy of the actor
    "prioritized", False,          # prioritized replay on a K-ary sum tree
    "per_alpha", 0.6,              # priority exponent: P(i) ~ p_i ** alpha
    "per_beta", 0.4,               # importance-sampling exponent of the weights (N P(i)) ** -beta
    "per_k", 4,                    # fan-out of the sum tree: 2, 4, 8 or 16
    "per_eps", 1e-3,               # added to |TD error| so that no priority is zero
    "checkpoint_every", 0,         # env steps between checkpoints of the whole run (0: none)
    "checkpoint_replay", False,    # checkpoints hold the replay buffer too (exact resume)
)

REPLAYS = ("float", "compressed")
ADAM_STATES = ("float", "int16")
SUM_TREE_FANOUTS = (2, 4, 8, 16)

_POSITIVE_INTS = ("batch_size", "buffer_capacity", "policy_delay", "total_steps",
                  "eval_episodes", "train_every")
_NON_NEGATIVE = ("learning_starts", "eval_every", "seed", "actor_lr", "critic_lr",
                 "policy_noise", "noise_clip", "exploration_noise", "adam_eps")


def _known(name):
    for i in range(0, len(_FIELDS), 2):
        if _FIELDS[i] == name:
            return True
    return False


class TD3Config:
    """Settings of a TD3 run; unknown keys and impossible values raise ValueError naming the field."""

    def __init__(self, **overrides):
        for i in range(0, len(_FIELDS), 2):
            setattr(self, _FIELDS[i], _FIELDS[i + 1])
        for name, value in overrides.items():
            if not _known(name):
                raise ValueError("unknown config field %r" % name)
            setattr(self, name, tuple(value) if isinstance(value, list) else value)
        self.validate()

    @classmethod
    def from_dict(cls, d):
        return cls(**d)

    def to_dict(self):
        return {_FIELDS[i]: getattr(self, _FIELDS[i]) for i in range(0, len(_FIELDS), 2)}

    def validate(self):
        for name in ("actor_hidden", "critic_hidden"):
            sizes = getattr(self, name)
            if not isinstance(sizes, tuple) or not sizes:
                raise ValueError("%s must be a non-empty list of widths, got %r" % (name, sizes))
            for s in sizes:
                if not isinstance(s, int) or s <= 0:
                    raise ValueError("%s must hold positive integers, got %r" % (name, sizes))
        for name in _POSITIVE_INTS:
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ValueError("%s must be a positive integer, got %r" % (name, v))
        for name in _NON_NEGATIVE:
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError("%s must be a number >= 0, got %r" % (name, v))
        if self.actor_lr <= 0 or self.critic_lr <= 0:
            raise ValueError("%s must be > 0" % ("actor_lr" if self.actor_lr <= 0 else "critic_lr"))
        if not isinstance(self.micro_batch, int) or not 0 <= self.micro_batch <= self.batch_size:
            raise ValueError("micro_batch must be an integer in [0, batch_size], got %r"
                             % (self.micro_batch,))
        if self.batch_size > self.buffer_capacity:
            raise ValueError("batch_size (%d) must not exceed buffer_capacity (%d)"
                             % (self.batch_size, self.buffer_capacity))
        if not isinstance(self.gamma, (int, float)) or not 0.0 <= self.gamma <= 1.0:
            raise ValueError("gamma must be in [0, 1], got %r" % (self.gamma,))
        if not isinstance(self.tau, (int, float)) or not 0.0 < self.tau <= 1.0:
            raise ValueError("tau must be in (0, 1], got %r" % (self.tau,))
        for name in ("adam_beta1", "adam_beta2"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
                raise ValueError("%s must be in [0, 1), got %r" % (name, v))
        if self.adam_state not in ADAM_STATES:
            raise ValueError("adam_state must be one of %s, got %r"
                             % (", ".join(ADAM_STATES), self.adam_state))
        if self.replay not in REPLAYS:
            raise ValueError("replay must be one of %s, got %r" % (", ".join(REPLAYS), self.replay))
        for name in ("episode_steps", "episode_updates", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError("%s must be an integer >= 0, got %r" % (name, v))
        if not isinstance(self.env, str):
            raise ValueError("env must be the name of an environment, got %r" % (self.env,))
        for name in ("act_int8", "prioritized", "checkpoint_replay"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError("%s must be true or false, got %r" % (name, getattr(self, name)))
        if self.per_k not in SUM_TREE_FANOUTS:
            raise ValueError("per_k must be one of 2, 4, 8, 16, got %r" % (self.per_k,))
        for name in ("per_alpha", "per_beta"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError("%s must be in [0, 1], got %r" % (name, v))
        if not isinstance(self.per_eps, (int, float)) or not self.per_eps > 0.0:
            raise ValueError("per_eps must be > 0, got %r" % (self.per_eps,))
