"""The TD3 settings, one typed dataclass shared by the mirror, the benchmarks and the tests.

Names follow the TD3 paper and CleanRL's `td3_continuous_action.py`.
"""

from dataclasses import asdict, dataclass, fields

REPLAYS = ("float", "compressed")
ADAM_STATES = ("float", "int16")
SUM_TREE_FANOUTS = (2, 4, 8, 16)


@dataclass
class TD3Config:
    actor_hidden: tuple = (64, 64)  # hidden layer widths of the actor (policy) MLP
    critic_hidden: tuple = (64, 64)  # hidden layer widths of each of the twin critic MLPs
    batch_size: int = 100  # transitions sampled from the replay buffer per update
    micro_batch: int = 0  # device: rows per network pass, gradients summed (0: whole batch); the
    #                       mirror computes the same sum in one pass
    buffer_capacity: int = 10000  # replay buffer rows (ring overwrite when full)
    gamma: float = 0.99  # discount factor
    tau: float = 0.02  # Polyak rate of the target networks (paper: 0.005; faster here, see bench.learn)
    actor_lr: float = 1e-3  # Adam learning rate of the actor
    critic_lr: float = 2e-3  # Adam learning rate of both critics
    adam_beta1: float = 0.9  # Adam first-moment decay
    adam_beta2: float = 0.999  # Adam second-moment decay
    adam_eps: float = 1e-8  # Adam denominator epsilon
    adam_state: str = "float"  # Adam moments: "float", or "int16" codes with per-tensor scales
    policy_noise: float = 0.2  # std of the target policy smoothing noise (normalised action units)
    noise_clip: float = 0.5  # clip of the target policy smoothing noise
    exploration_noise: float = 0.1  # std of the Gaussian exploration noise added to the actor
    policy_delay: int = 2  # critic updates per actor and target update
    learning_starts: int = 500  # env steps with uniform random actions before training starts
    train_every: int = 1  # env steps per TD3 update after the warm-up (2: an update every 2nd step)
    episode_updates: int = 0  # 0: updates during episodes; N: none inside, N after each episode
    env: str = "pendulum"  # built-in environment: "pendulum" or "servo"
    episode_steps: int = 0  # steps per episode before truncation (0: the environment's)
    total_steps: int = 10000  # env steps of one training run
    eval_every: int = 1000  # env steps between deterministic evaluations (0: never)
    eval_episodes: int = 10  # episodes per evaluation
    seed: int = 0  # seed of the training generator Rng(seed, 0) and of evaluation Rng(seed, 1)
    replay: str = "float"  # replay storage: "float" (float32 rows) or "compressed" (int16, 10 B/step)
    act_int8: bool = False  # explore with an int8 copy of the actor, refreshed at each actor update
    prioritized: bool = False  # prioritized replay on a K-ary sum tree instead of uniform sampling
    per_alpha: float = 0.6  # priority exponent: P(i) ~ p_i ** alpha
    per_beta: float = 0.4  # importance-sampling exponent of the weights (N P(i)) ** -beta
    per_k: int = 4  # fan-out of the sum tree: 2, 4, 8 or 16
    per_eps: float = 1e-3  # added to |TD error| so that no priority is zero
    checkpoint_every: int = 0  # device: env steps between checkpoints of the whole run (0: none)
    checkpoint_replay: bool = False  # device: checkpoints hold the replay buffer (exact resume)

    def __post_init__(self):
        for name in ("actor_hidden", "critic_hidden"):
            widths = getattr(self, name)
            if not isinstance(widths, (list, tuple)):
                raise ValueError(f"{name} must be a non-empty list of positive ints, "
                                 f"got {widths!r}")
            setattr(self, name, tuple(widths))
        self.validate()

    def validate(self):
        """Raise ValueError naming the first field whose value is impossible."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type is float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if f.type is str and not isinstance(value, str):
                raise ValueError(f"{f.name} must be a string, got {value!r}")
        for name in ("actor_hidden", "critic_hidden"):
            widths = getattr(self, name)
            if len(widths) == 0 or any(not _is_int(w) or w <= 0 for w in widths):
                raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {widths!r}")
        for name in ("batch_size", "buffer_capacity", "total_steps",
                     "policy_delay", "eval_episodes", "train_every"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("learning_starts", "eval_every", "seed", "checkpoint_every", "episode_steps",
                     "episode_updates"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if not _is_int(self.micro_batch) or not 0 <= self.micro_batch <= self.batch_size:
            raise ValueError(f"micro_batch must be an int in [0, batch_size], "
                             f"got {self.micro_batch!r}")
        if self.batch_size > self.buffer_capacity:
            raise ValueError(f"batch_size ({self.batch_size}) must not exceed "
                             f"buffer_capacity ({self.buffer_capacity})")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau!r}")
        for name in ("actor_lr", "critic_lr", "adam_eps", "policy_noise", "noise_clip",
                     "exploration_noise"):
            value = getattr(self, name)
            if not value >= 0.0:  # also rejects NaN
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.adam_state not in ADAM_STATES:
            raise ValueError(f"adam_state must be one of {', '.join(ADAM_STATES)}, "
                             f"got {self.adam_state!r}")
        if self.replay not in REPLAYS:
            raise ValueError(f"replay must be one of {', '.join(REPLAYS)}, got {self.replay!r}")
        for name in ("act_int8", "prioritized", "checkpoint_replay"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.per_k not in SUM_TREE_FANOUTS:
            raise ValueError(f"per_k must be one of 2, 4, 8, 16, got {self.per_k!r}")
        for name in ("per_alpha", "per_beta"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if not self.per_eps > 0.0:
            raise ValueError(f"per_eps must be > 0, got {self.per_eps!r}")

    @classmethod
    def from_dict(cls, d):
        """Build a config from a dict, rejecting keys that are not fields."""
        known = {f.name for f in fields(cls)}
        for key in d:
            if key not in known:
                raise ValueError(f"unknown TD3Config field {key!r}")
        return cls(**d)

    def episode_length(self):
        """Steps per episode: ``episode_steps``, or the environment's own when that is 0."""
        if self.episode_steps:
            return self.episode_steps
        from microrl_host.mirror.envs import make
        return make(self.env).episode_steps

    def to_dict(self):
        """A JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["actor_hidden"] = list(self.actor_hidden)
        d["critic_hidden"] = list(self.critic_hidden)
        return d


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)
