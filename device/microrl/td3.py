"""TD3 (Fujimoto, van Hoof and Meger, 2018): twin critics, clipped double-Q targets, target policy
smoothing and delayed actor and target updates, on preallocated buffers.

Actions are ``act_dim`` floats normalised to [-1, 1]; the environment scales them (to torque, a
duty cycle, ...).
"""

from .adam import adam_for
from .backend import K
from .batch import Batch
from .mlp import MLP


class Diverged(ValueError):
    """A NaN or an infinity in a target or a loss (a non-finite weight shows there within one
    update): the update stopped before its optimizer step."""


def _clip(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


class TD3:
    """``TD3(config, rng, env)``: networks and buffers sized from ``env`` (its ``obs_dim``,
    ``act_dim`` and, for compressed replay, its bounds); default the config's built-in env."""

    def __init__(self, config, rng, env=None):
        c = config
        self.config = c
        if env is None:
            from .envs import make
            env = make(c.env)
        od, ad = env.obs_dim, env.act_dim
        # Every attribute now, so that the instance's dict reaches its size while the heap is
        # whole (growing it after the buffers needs a block a full heap may not have).
        self.buffer = self.per = self.batch = self.qactor = None
        self.actor = self.critic1 = self.critic2 = None
        self.actor_target = self.critic1_target = self.critic2_target = None
        self.actor_adam = self.critic1_adam = self.critic2_adam = None
        self._y = self._dq = self._dq_d = self._da = self._noise = self._obs1 = self._obs1_d = None
        self.critic_updates = 0
        self._action = [0.0] * ad  # the action policy() and act() return, reused
        n = c.batch_size
        # The networks see at most ``rows`` batch rows at a time: their activations are sized for
        # a micro-batch, and the gradients of a batch are summed over its micro-batches.
        rows = c.micro_batch or n
        self.rows = rows
        actor_sizes = (od,) + tuple(c.actor_hidden) + (ad,)
        critic_sizes = (od + ad,) + tuple(c.critic_hidden) + (1,)
        # Optional modules load only when configured, and before any buffer: loading code leaves
        # holes. Then the largest blocks (the replay buffer, the sum tree) while the heap is whole.
        if c.replay == "compressed":
            from .compressed import CompressedReplay as buffer_class
        else:
            from .replay import ReplayBuffer as buffer_class
        if c.prioritized:
            from .prioritized import Prioritized
        if c.act_int8:
            from .qactor import QActor
        from gc import collect
        collect()  # the loading's garbage is free before the first buffer takes its place
        self.buffer = buffer_class(c.buffer_capacity, env)
        self.per = Prioritized(c, self.buffer, n) if c.prioritized else None
        betas = (c.adam_beta1, c.adam_beta2, c.adam_eps)
        state = c.adam_state
        self.actor = MLP(actor_sizes, "tanh", rows)
        self.actor_adam = adam_for(self.actor, c.actor_lr, betas, state)
        self.critic1 = MLP(critic_sizes, "linear", rows)
        self.critic1_adam = adam_for(self.critic1, c.critic_lr, betas, state)
        self.critic2 = MLP(critic_sizes, "linear", rows, share=self.critic1)
        self.critic2_adam = adam_for(self.critic2, c.critic_lr, betas, state, self.critic1_adam)
        self.actor_target = MLP(actor_sizes, "tanh", rows, share=self.actor, trainable=False)
        self.critic1_target = MLP(critic_sizes, "linear", rows, share=self.critic1,
                                  trainable=False)
        self.critic2_target = MLP(critic_sizes, "linear", rows, share=self.critic1,
                                  trainable=False)
        self.batch = Batch(n, od, ad)
        self._y = K.matrix(n, 1)
        self._dq, self._dq_d = K.staged(rows, 1)
        self._da = K.matrix(rows, ad)
        self._noise = K.staged(rows, ad)  # target smoothing noise (a scratch on ulab)
        self._obs1, self._obs1_d = K.staged(1, od)
        # Every buffer is allocated: now draw the weights (drawing leaves garbage between blocks).
        self.actor.init_uniform(rng)
        self.critic1.init_uniform(rng)
        self.critic2.init_uniform(rng)
        self.actor_target.copy_from(self.actor)
        self.critic1_target.copy_from(self.critic1)
        self.critic2_target.copy_from(self.critic2)
        self.critic_updates = 0
        self.qactor = None  # act_int8: the int8 copy of the actor that explores
        if c.act_int8:
            self.qactor = QActor(actor_sizes)
            self.qactor.refresh(self.actor)

    def policy(self, obs):
        """The deterministic action (``act_dim`` floats in [-1, 1], a list the next ``policy`` or
        ``act`` overwrites)."""
        o = self._obs1_d
        for j in range(len(o)):
            o[j] = obs[j]
        out = self.actor.forward(self._obs1, 1)
        a = self._action
        for j in range(len(a)):
            a[j] = K.get(out, 0, j)
        return a

    def act(self, obs, rng, step):
        """The exploration action: uniform during warm-up, then policy plus Gaussian noise, one
        draw per action dimension (a list this call reuses)."""
        c = self.config
        a = self._action
        if step < c.learning_starts:
            for j in range(len(a)):
                a[j] = 2.0 * rng.uniform() - 1.0
            return a
        p = self.policy(obs) if self.qactor is None else self.qactor.actions(obs)
        noise = c.exploration_noise
        for j in range(len(a)):  # p may be a itself: each element is read before it is written
            a[j] = _clip(p[j] + noise * rng.normal(), -1.0, 1.0)
        return a

    def store(self, obs, action, reward, next_obs, done, episode_end=False):
        """Add one step to the replay buffer (and give it a priority under prioritized replay)."""
        slot = self.buffer.add(obs, action, reward, next_obs, done, episode_end)
        if self.per is not None:
            self.per.added(slot)

    def train_step(self, rng):
        self.update_critic(rng)
        if self.critic_updates % self.config.policy_delay == 0:
            self.update_actor()
            if self.qactor is not None:
                self.qactor.refresh(self.actor)
            self.update_targets()

    # The algorithm's heart: clipped double-Q learning with target policy smoothing.
    def update_critic(self, rng):
        c = self.config
        n = c.batch_size
        b = self.batch
        per = self.per
        if per is None:
            self.buffer.sample(rng, n, b)
        else:
            per.sample(rng, n, b)
        y = self._y
        for s in range(0, n, self.rows):
            m = min(self.rows, n - s)
            a_next = self.actor_target.forward(K.rows(b.next_obs, s, m), m)
            next_sa = K.rows(b.next_sa, s, m)
            K.smooth_actions(next_sa, len(self._obs1_d), a_next, rng, c.policy_noise,
                             c.noise_clip, m, self._noise)
            y_part = K.rows(y, s, m)
            K.copy_cols(y_part, 0, self.critic1_target.forward(next_sa, m), 0, 1, m)
            K.minimum(y_part, self.critic2_target.forward(next_sa, m), m)
            K.td_target(y_part, K.rows(b.reward, s, m), K.rows(b.done, s, m), c.gamma, m)
        if K.bad(y, n):
            raise Diverged("the critics' target")
        dq = self._dq
        for critic, adam in ((self.critic1, self.critic1_adam), (self.critic2, self.critic2_adam)):
            for s in range(0, n, self.rows):
                m = min(self.rows, n - s)
                K.mse_grad(dq, critic.forward(K.rows(b.sa, s, m), m), K.rows(y, s, m), m, n)
                if K.bad(dq, m):
                    raise Diverged("critic %d's loss" % (1 if critic is self.critic1 else 2))
                if per is not None:  # importance weights; critic 1's TD errors are the priorities
                    if critic is self.critic1:
                        per.update_priorities(self._dq_d, m, s)
                    K.scale_rows(dq, K.rows(per.weights, s, m), m)
                critic.backward(dq, m, param_grads=True, input_grad=False, accumulate=s > 0)
            adam.step()
        self.critic_updates += 1

    def update_actor(self):
        n = self.config.batch_size
        b = self.batch
        od, ad = len(self._obs1_d), len(self._action)
        for s in range(0, n, self.rows):
            m = min(self.rows, n - s)
            sa = K.rows(b.sa, s, m)
            K.copy_cols(sa, od, self.actor.forward(K.rows(b.obs, s, m), m), 0, ad, m)
            if K.bad(self.critic1.forward(sa, m), m):
                raise Diverged("the actor's loss")
            K.fill(self._dq, -1.0 / n, m)
            dsa = self.critic1.backward(self._dq, m, param_grads=False, input_grad=True)
            K.copy_cols(self._da, 0, dsa, od, ad, m)
            self.actor.backward(self._da, m, param_grads=True, input_grad=False,
                                accumulate=s > 0)
        self.actor_adam.step()

    def update_targets(self):
        tau = self.config.tau
        self.actor_target.polyak_from(self.actor, tau)
        self.critic1_target.polyak_from(self.critic1, tau)
        self.critic2_target.polyak_from(self.critic2, tau)
