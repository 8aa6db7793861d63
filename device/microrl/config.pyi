from typing import Any

REPLAYS: tuple[str, ...]
ADAM_STATES: tuple[str, ...]
SUM_TREE_FANOUTS: tuple[int, ...]

class TD3Config:
    """Settings of a TD3 run; unknown keys and impossible values raise ValueError naming the field."""

    actor_hidden: tuple[int, ...]  # hidden layer widths of the actor
    critic_hidden: tuple[int, ...]  # hidden layer widths of each critic
    batch_size: int  # transitions per minibatch
    micro_batch: int  # rows per network pass, summed into the batch's gradient (0: whole batch)
    buffer_capacity: int  # replay buffer capacity in transitions
    gamma: float  # discount factor
    tau: float  # Polyak rate of the target networks
    actor_lr: float  # Adam learning rate of the actor
    critic_lr: float  # Adam learning rate of the critics
    adam_beta1: float  # Adam first-moment decay
    adam_beta2: float  # Adam second-moment decay
    adam_eps: float  # Adam denominator epsilon
    adam_state: str  # Adam moments: "float", or "int16" codes with per-tensor scales
    policy_noise: float  # std of target policy smoothing noise, normalised action units
    noise_clip: float  # clip of the target policy smoothing noise
    exploration_noise: float  # std of the Gaussian exploration noise
    policy_delay: int  # critic updates per actor and target update
    learning_starts: int  # warm-up steps of uniform random actions before any update
    train_every: int  # env steps per TD3 update after the warm-up
    episode_updates: int  # 0: updates during episodes; N: none inside, N after each episode
    env: str  # built-in environment: "pendulum" or "servo"
    episode_steps: int  # steps per episode before truncation (0: the environment's)
    total_steps: int  # environment steps of a training run
    eval_every: int  # steps between deterministic evaluations (0: only at the end)
    eval_episodes: int  # episodes per deterministic evaluation
    seed: int  # seed of the random generator
    replay: str  # replay rows: "float" (float32) or "compressed" (int16, 10 B)
    act_int8: bool  # explore with an int8 copy of the actor
    prioritized: bool  # prioritized replay on a K-ary sum tree
    per_alpha: float  # priority exponent: P(i) ~ p_i ** alpha
    per_beta: float  # importance-sampling exponent of the weights (N P(i)) ** -beta
    per_k: int  # fan-out of the sum tree: 2, 4, 8 or 16
    per_eps: float  # added to |TD error| so that no priority is zero
    checkpoint_every: int  # env steps between checkpoints of the whole run (0: none)
    checkpoint_replay: bool  # checkpoints hold the replay buffer too (exact resume)

    def __init__(self, **overrides: Any) -> None: ...
    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TD3Config: ...
    def to_dict(self) -> dict[str, Any]: ...
    def validate(self) -> None: ...
