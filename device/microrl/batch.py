"""The minibatch: preallocated matrices that replay buffers fill and the TD3 update reads."""

from .backend import K


class Batch:
    """Preallocated minibatch matrices. ``sa`` and ``next_sa`` are the critics' [obs, action] inputs.

    Each matrix ``x`` has a flat array ``x_d`` of its elements that writes through to it: replay
    buffers fill rows element by element there (on ulab a per-element ndarray write boxes a float
    and allocates hundreds of bytes; an array store allocates nothing)."""

    def __init__(self, max_batch, obs_dim, act_dim):
        self.obs, self.obs_d = K.staged(max_batch, obs_dim)
        self.sa, self.sa_d = K.staged(max_batch, obs_dim + act_dim)
        self.reward, self.reward_d = K.staged(max_batch, 1)
        self.done, self.done_d = K.staged(max_batch, 1)
        self.next_obs, self.next_obs_d = K.staged(max_batch, obs_dim)
        self.next_sa, self.next_sa_d = K.staged(max_batch, obs_dim + act_dim)
