"""TD3 (Fujimoto, van Hoof and Meger, 2018): twin critics, clipped double-Q targets, target policy
smoothing and delayed actor and target updates, on preallocated buffers.

Actions are normalised to [-1, 1]; the environment scales them to torque.
"""

from .adam import adam_for
from .backend import K
from .mlp import MLP
from .pendulum import ACT_DIM, OBS_DIM
from .replay import Batch, ReplayBuffer


def _clip(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


class TD3:
    def __init__(self, config, rng):
        c = config
        self.config = c
        n = c.batch_size
        # The networks see at most ``rows`` batch rows at a time: their activations are sized for
        # a micro-batch, and the gradients of a batch are summed over its micro-batches.
        rows = c.micro_batch or n
        self.rows = rows
        actor_sizes = (OBS_DIM,) + tuple(c.actor_hidden) + (ACT_DIM,)
        critic_sizes = (OBS_DIM + ACT_DIM,) + tuple(c.critic_hidden) + (1,)
        # Optional modules load only when configured, and before any buffer: loading code leaves
        # holes. Then the largest blocks (the replay buffer, the sum tree) while the heap is whole.
        buffer_class = ReplayBuffer
        if c.replay == "compressed":
            from .compressed import CompressedReplay as buffer_class
        if c.prioritized:
            from .prioritized import Prioritized
        if c.act_int8:
            from .qactor import QActor
        self.buffer = buffer_class(c.buffer_capacity)
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
        self.batch = Batch(n)
        self._y = K.matrix(n, 1)
        self._dq, self._dq_d = K.staged(rows, 1)
        self._da = K.matrix(rows, ACT_DIM)
        self._noise = K.staged(rows, ACT_DIM)  # target smoothing noise (a scratch on ulab)
        self._obs1, self._obs1_d = K.staged(1, OBS_DIM)
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
        """The deterministic action in [-1, 1] for one observation."""
        o = self._obs1_d
        for j in range(OBS_DIM):
            o[j] = obs[j]
        return K.get(self.actor.forward(self._obs1, 1), 0, 0)

    def act(self, obs, rng, step):
        """The exploration action: uniform during warm-up, then policy plus Gaussian noise."""
        c = self.config
        if step < c.learning_starts:
            return 2.0 * rng.uniform() - 1.0
        a = self.policy(obs) if self.qactor is None else self.qactor.policy(obs)
        return _clip(a + c.exploration_noise * rng.normal(), -1.0, 1.0)

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
            K.smooth_actions(next_sa, OBS_DIM, a_next, rng, c.policy_noise, c.noise_clip, m,
                             self._noise)
            y_part = K.rows(y, s, m)
            K.copy_cols(y_part, 0, self.critic1_target.forward(next_sa, m), 0, 1, m)
            K.minimum(y_part, self.critic2_target.forward(next_sa, m), m)
            K.td_target(y_part, K.rows(b.reward, s, m), K.rows(b.done, s, m), c.gamma, m)
        dq = self._dq
        for critic, adam in ((self.critic1, self.critic1_adam), (self.critic2, self.critic2_adam)):
            for s in range(0, n, self.rows):
                m = min(self.rows, n - s)
                K.mse_grad(dq, critic.forward(K.rows(b.sa, s, m), m), K.rows(y, s, m), m, n)
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
        for s in range(0, n, self.rows):
            m = min(self.rows, n - s)
            sa = K.rows(b.sa, s, m)
            K.copy_cols(sa, OBS_DIM, self.actor.forward(K.rows(b.obs, s, m), m), 0, ACT_DIM, m)
            self.critic1.forward(sa, m)
            K.fill(self._dq, -1.0 / n, m)
            dsa = self.critic1.backward(self._dq, m, param_grads=False, input_grad=True)
            K.copy_cols(self._da, 0, dsa, OBS_DIM, ACT_DIM, m)
            self.actor.backward(self._da, m, param_grads=True, input_grad=False,
                                accumulate=s > 0)
        self.actor_adam.step()

    def update_targets(self):
        tau = self.config.tau
        self.actor_target.polyak_from(self.actor, tau)
        self.critic1_target.polyak_from(self.critic1, tau)
        self.critic2_target.polyak_from(self.critic2, tau)
