"""TD3 (Fujimoto et al. 2018): twin critics, target policy smoothing, delayed policy updates.

Same functions in the same order as the device: `act`, `train_step`, `update_critic`, `update_actor`,
`update_targets`. The three online networks share one flat parameter vector and the three targets
another, so the Polyak update is one vectorised operation, and the two critics (same learning rate,
always stepped together) share one Adam, which is element for element the two Adams of the spec.
Both vectors sit in one buffer, so the critic update's four critic passes are one stack (TwinPairs).
With the compiled kernels (fused_steps.py) the batch arithmetic around the passes (smoothing
noise, the clipped double-Q target and its gradient, Polyak averaging, the copies into the
networks' inputs) is a few calls with numpy's numbers; `fused.numpy_path()` builds the numpy
reference.
"""

from collections import namedtuple

import numpy as np

from microrl_host.mirror import fused, fused_steps
from microrl_host.mirror.adam import Adam, Int16Adam
from microrl_host.mirror.intadam import IntAdam, polyak as int_polyak
from microrl_host.mirror.compressed import CompressedReplayBuffer
from microrl_host.mirror.mlp import MLP, parameter_count, tensor_lengths
from microrl_host.mirror.prioritized import Prioritized
from microrl_host.mirror.replay import ReplayBuffer
from microrl_host.mirror.twin import TwinPairs, TwinSequential


# The compiled update's views (the networks' input columns) and constants in the learner dtype.
_Compiled = namedtuple("_Compiled", "online_in next_obs_in next_action_in actor_target_in actor_in "
                       "critic_obs_in critic_action_in noise_clip one gamma dq_scale keep tau")


class TD3:
    """`TD3(config, rng, dtype, products, env)`: draws actor, critic 1, critic 2 from `rng` in that
    order. `products="int16"`: every network computes as the device's viper backend does. `env`
    (default: the config's built-in one) gives the dimensions and compressed replay's bounds."""

    def __init__(self, config, rng, dtype=np.float64, products="float", env=None):
        if products == "int16" and config.micro_batch and config.micro_batch < config.batch_size:
            raise ValueError("products='int16' mirrors whole batches only: the device picks its "
                             "scales per micro-batch")
        self.config = config
        self.dtype = np.dtype(dtype)
        if env is None:
            from microrl_host.mirror.envs import make
            env = make(config.env)
        od, ad = self.obs_dim, self.act_dim = env.obs_dim, env.act_dim
        batch = config.batch_size
        actor_sizes = (od,) + tuple(config.actor_hidden) + (ad,)
        critic_sizes = (od + ad,) + tuple(config.critic_hidden) + (1,)
        n_actor = parameter_count(actor_sizes)
        n_critic = parameter_count(critic_sizes)
        total = n_actor + 2 * n_critic
        # [actor | critic 1 | critic 2] then the targets in the same layout, in one buffer: the
        # four critics' forward passes of an update are then one stack (twin.TwinPairs)
        online_and_target = np.zeros(2 * total, self.dtype)
        self.params = online_and_target[:total]
        self.target_params = online_and_target[total:]
        self.grads = np.zeros(total, self.dtype)
        spans = ((0, n_actor), (n_actor, n_actor + n_critic), (n_actor + n_critic, total))
        layout = ((actor_sizes, "tanh"), (critic_sizes, "linear"), (critic_sizes, "linear"))

        def build(flat, grads, init_rng):
            return [MLP(sizes, act, batch, init_rng, self.dtype, flat[a:b], grads[a:b], products)
                    for (sizes, act), (a, b) in zip(layout, spans)]

        self.actor, self.critic1, self.critic2 = build(self.params, self.grads, rng)
        target_grads = np.zeros(total, self.dtype)  # never used, keeps the MLPs uniform
        self.actor_target, self.critic1_target, self.critic2_target = build(
            self.target_params, target_grads, None)
        np.copyto(self.target_params, self.params)
        self.critic_pairs = None  # float products: the critics and targets as one stack
        if products == "int16":
            self.critics = TwinSequential(self.critic1, self.critic2)
            self.critic_targets = TwinSequential(self.critic1_target, self.critic2_target)
        else:
            self.critic_pairs = TwinPairs((self.critic1, self.critic2),
                                          (self.critic1_target, self.critic2_target))
            self.critics, self.critic_targets = self.critic_pairs.online, self.critic_pairs.target
        self.networks = {"actor": self.actor, "critic1": self.critic1, "critic2": self.critic2,
                         "actor_target": self.actor_target, "critic1_target": self.critic1_target,
                         "critic2_target": self.critic2_target}
        adam = (config.adam_beta1, config.adam_beta2, config.adam_eps)
        if config.adam_state == "int16":
            self.actor_optimizer = Int16Adam(self.params[:n_actor], self.grads[:n_actor],
                                             tensor_lengths(actor_sizes), config.actor_lr, *adam)
            self.critic_optimizer = Int16Adam(self.params[n_actor:], self.grads[n_actor:],
                                              2 * tensor_lengths(critic_sizes), config.critic_lr,
                                              *adam)
        elif products == "int16":  # the viper backend's Adam is integer too (intadam)
            self.actor_optimizer = IntAdam(self.params[:n_actor], self.grads[:n_actor],
                                           tensor_lengths(actor_sizes), config.actor_lr, *adam)
            self.critic_optimizer = IntAdam(self.params[n_actor:], self.grads[n_actor:],
                                            2 * tensor_lengths(critic_sizes), config.critic_lr,
                                            *adam)
        else:
            self.actor_optimizer = Adam(self.params[:n_actor], self.grads[:n_actor],
                                        config.actor_lr, *adam)
            self.critic_optimizer = Adam(self.params[n_actor:], self.grads[n_actor:],
                                         config.critic_lr, *adam)
        # the viper backend's target updates, per tensor in integers; None: float
        self._int_polyak = (tensor_lengths(actor_sizes) + 2 * tensor_lengths(critic_sizes)
                            if products == "int16" else None)
        if config.replay == "compressed":
            self.buffer = CompressedReplayBuffer(config.buffer_capacity, env, self.dtype)
        else:
            self.buffer = ReplayBuffer(config.buffer_capacity, od, ad, self.dtype)
        self.critic_updates = 0
        # Preallocated batch work space.
        self._next_obs_action = np.zeros((batch, od + ad), self.dtype)
        self._obs_action_pi = np.zeros((batch, od + ad), self.dtype)
        self._smoothing = np.zeros((batch, ad), self.dtype)
        self._action = np.zeros(ad)  # the action `act` returns, reused
        self._target_q = np.zeros((batch, 1), self.dtype)
        self._not_done = np.zeros((batch, 1), self.dtype)
        self._dq = np.zeros((2, batch, 1), self.dtype)
        self._dq_actor = np.full((batch, 1), -1.0 / batch, self.dtype)
        self._polyak_tmp = np.zeros(total, self.dtype)
        self._obs = None  # the batch observations of the last critic update
        self.per = None  # prioritized replay, when the config asks for it
        if config.prioritized:
            self.per = Prioritized(config, self.buffer, batch, self.dtype)
        self._fused = None  # compiled batch arithmetic (fused_steps.py): its views and constants
        if self.critic_pairs is not None and fused.active():
            cast = self.dtype.type
            online_in, target_in = self.critic_pairs.inputs(batch)
            critic1_in = self.critic1.inputs(batch)
            self._fused = _Compiled(
                online_in, target_in[:, :od], target_in[:, od:], self.actor_target.inputs(batch),
                self.actor.inputs(batch), critic1_in[:, :od], critic1_in[:, od:],
                cast(config.noise_clip), cast(1.0), cast(config.gamma), cast(2.0 / batch),
                cast(1.0 - config.tau), cast(config.tau))
        self.qactor = None  # act_int8: the int8 copy of the actor that explores
        if config.act_int8:
            from microrl_host.mirror.qactor import QActor
            self.qactor = QActor(actor_sizes)
            self.qactor.refresh(self.actor)

    def act(self, obs, rng, step):
        """Normalised action, `act_dim` floats in [-1, 1] (an array the next call overwrites):
        uniform before `learning_starts`, then actor + noise, one draw per dimension in order."""
        config = self.config
        a = self._action
        if step < config.learning_starts:
            for j in range(self.act_dim):
                a[j] = 2.0 * rng.uniform() - 1.0
            return a
        if self.qactor is not None:
            p = self.qactor.actions(obs)
        else:
            p = self.actor.forward(obs, 1)[0]
        noise = config.exploration_noise
        for j in range(self.act_dim):
            a[j] = min(max(float(p[j]) + noise * rng.normal(), -1.0), 1.0)
        return a

    def store(self, obs, action, reward, next_obs, done, episode_end=False):
        """Add one step to the replay buffer (and give it a priority under prioritized replay)."""
        slot = self.buffer.add(obs, action, reward, next_obs, done, episode_end)
        if self.per is not None:
            self.per.added(slot)

    def train_step(self, rng):
        """One TD3 update: the critics every call, the actor and targets every `policy_delay`."""
        # The heart of the algorithm: clipped double-Q learning with target policy smoothing, and
        # delayed policy and target updates.
        self.update_critic(rng)
        if self.critic_updates % self.config.policy_delay == 0:
            self.update_actor()
            if self.qactor is not None:
                self.qactor.refresh(self.actor)
            self.update_targets()

    def update_critic(self, rng):
        """Sample a batch, regress both critics on the clipped double-Q target, one Adam step."""
        config = self.config
        batch = config.batch_size
        per = self.per
        if per is None:
            obs, _action, reward, next_obs, done = self.buffer.sample(rng, batch)
        else:
            obs, _action, reward, next_obs, done = per.sample(rng, batch)
        self._obs = obs
        if self._fused is not None and self.critic_pairs is not None:
            self._update_critic_fused(rng, reward, next_obs, done)
            return
        pairs = self.critic_pairs
        if pairs is None:
            obs_action, next_obs_action = self.buffer.obs_action, self._next_obs_action
        else:  # the stack's inputs: the critics' and the targets'
            obs_action, next_obs_action = pairs.inputs(batch)
            np.copyto(obs_action, self.buffer.obs_action)
        # Target policy smoothing: a' = clip(actor_target(s') + clip(policy_noise N(0, 1),
        # -noise_clip, noise_clip), -1, 1), one normal per action, in row-major order.
        smoothing = self._smoothing
        ad = self.act_dim
        np.multiply(rng.normal_array(batch * ad).reshape(batch, ad), config.policy_noise,
                    out=smoothing)
        _clip(smoothing, config.noise_clip)
        next_obs_action[:, :self.obs_dim] = next_obs
        np.add(self.actor_target.forward(next_obs, batch), smoothing, out=smoothing)
        _clip(smoothing, 1.0)  # on the contiguous buffer, then one copy into the strided input
        next_obs_action[:, self.obs_dim:] = smoothing
        if pairs is None:
            q_target = self.critic_targets.forward(next_obs_action, batch)
            q = self.critics.forward(obs_action, batch)
        else:
            q, q_target = pairs.forward(batch)
        # y = r + gamma * (1 - done) * min(Q1'(s', a'), Q2'(s', a')).
        y = self._target_q
        np.minimum(q_target[0], q_target[1], out=y)
        not_done = self._not_done
        np.subtract(1.0, done, out=not_done)
        not_done *= config.gamma
        y *= not_done
        y += reward
        # Loss mean((Q1 - y)^2) + mean((Q2 - y)^2): dL/dQj = 2 (Qj - y) / B.
        dq = self._dq
        np.subtract(q, y, out=dq)
        dq *= 2.0 / batch
        if per is not None:  # importance weights; critic 1's TD errors are the priorities
            per.update_priorities(dq[0], batch)
            dq *= per.weights
        self.critics.backward(dq, batch)
        self.critic_optimizer.step()
        self.critic_updates += 1

    def _update_critic_fused(self, rng, reward, next_obs, done):
        """update_critic's arithmetic after the sample, in compiled kernels (fused_steps.py)."""
        config, batch, per, c = self.config, self.config.batch_size, self.per, self._fused
        smoothing = self._smoothing
        fused_steps.critic_inputs(self.buffer.obs_action, c.online_in, next_obs, c.next_obs_in,
                                  c.actor_target_in, rng.normal_array(batch * self.act_dim),
                                  config.policy_noise, c.noise_clip, smoothing)
        fused_steps.smoothed_actions(self.actor_target.forward(None, batch), smoothing,
                                     c.next_action_in, c.one)
        q, q_target = self.critic_pairs.forward(batch)
        dq = self._dq
        fused_steps.critic_target(q, q_target, reward, done, c.gamma, c.dq_scale, self._target_q,
                                  dq)
        if per is not None:
            per.update_priorities(dq[0], batch)
            dq *= per.weights
        self.critics.backward(dq, batch)
        self.critic_optimizer.step()
        self.critic_updates += 1

    def update_actor(self):
        """Deterministic policy gradient: minimise -mean(Q1(s, actor(s))) on the last batch."""
        batch = self.config.batch_size
        obs = self._obs
        od = self.obs_dim
        if self._fused is not None:  # straight into the networks' inputs
            c = self._fused
            fused_steps.copy2(obs, c.actor_in, c.critic_obs_in)
            fused_steps.copy(self.actor.forward(None, batch), c.critic_action_in)
            self.critic1.forward(None, batch)
        else:
            obs_action = self._obs_action_pi
            obs_action[:, :od] = obs
            obs_action[:, od:] = self.actor.forward(obs, batch)
            self.critic1.forward(obs_action, batch)
        dq_dinput = self.critic1.backward(self._dq_actor, batch, param_grads=False)
        self.actor.backward(dq_dinput[:, od:], batch, input_grads=False)
        self.actor_optimizer.step()

    def update_targets(self):
        """Polyak averaging of all three targets: target = (1 - tau) target + tau online."""
        tau = self.config.tau
        if self._int_polyak is not None:
            int_polyak(self.target_params, self.params, self._int_polyak, tau)
            return
        if self._fused is not None:
            fused_steps.polyak(self.target_params, self.params, self._fused.keep, self._fused.tau)
            return
        np.multiply(self.params, tau, out=self._polyak_tmp)
        self.target_params *= 1.0 - tau
        self.target_params += self._polyak_tmp


def _clip(x, bound):
    """Clip `x` to [-bound, bound] in place (two ufuncs; np.clip's Python wrapper costs more)."""
    np.maximum(x, -bound, out=x)
    np.minimum(x, bound, out=x)
