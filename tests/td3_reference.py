"""A PyTorch reference of the TD3 update of docs/ALGORITHM.md, for comparing implementations.

Independent of both the device package and the host mirror: give it a config, the weights of the six
networks and, per critic update, the sampled batch and the raw normal draws of the smoothing noise;
it returns the weights after those updates, computed with torch autograd and torch.optim.Adam in
float64. Weights are lists `[W_0, b_0, W_1, b_1, ...]` with W of shape (in, out) (rows are inputs;
torch's Linear weight is its transpose) and b of shape (out,).
"""

import numpy as np
import torch

NETWORKS = ("actor", "critic1", "critic2", "actor_target", "critic1_target", "critic2_target")


def build_network(arrays, output_activation):
    """nn.Sequential of Linear + ReLU ..., Linear (+ Tanh) with the given weights, float64."""
    layers = []
    count = len(arrays) // 2
    for k in range(count):
        w = np.asarray(arrays[2 * k], dtype=np.float64)
        b = np.asarray(arrays[2 * k + 1], dtype=np.float64).reshape(-1)
        linear = torch.nn.Linear(w.shape[0], w.shape[1], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(linear)
        if k < count - 1:
            layers.append(torch.nn.ReLU())
    if output_activation == "tanh":
        layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def _weights(net):
    out = []
    for module in net:
        if isinstance(module, torch.nn.Linear):
            out += [module.weight.detach().numpy().T.copy(), module.bias.detach().numpy().copy()]
    return out


def _tensor(x, columns):
    return torch.from_numpy(np.asarray(x, dtype=np.float64).reshape(-1, columns))


def reference_update(config, weights, batches):
    """Run one `train_step` per entry of `batches` and return the new weights of all six networks.

    config: object with batch_size, gamma, tau, actor_lr, critic_lr, adam_beta1, adam_beta2,
        adam_eps, policy_noise, noise_clip, policy_delay (a TD3Config).
    weights: dict network name (see NETWORKS) -> list of arrays.
    batches: list of dicts with obs (B, 3), action (B, 1), reward (B,), next_obs (B, 3), done (B,)
        and noise (B,), the standard normals drawn for the target policy smoothing.
    """
    nets = {name: build_network(weights[name], "tanh" if name.startswith("actor") else "linear")
            for name in NETWORKS}
    betas = (config.adam_beta1, config.adam_beta2)
    actor_opt = torch.optim.Adam(nets["actor"].parameters(), lr=config.actor_lr, betas=betas,
                                 eps=config.adam_eps)
    critic_params = list(nets["critic1"].parameters()) + list(nets["critic2"].parameters())
    critic_opt = torch.optim.Adam(critic_params, lr=config.critic_lr, betas=betas,
                                  eps=config.adam_eps)
    critic_updates = 0
    for batch in batches:
        obs = _tensor(batch["obs"], 3)
        action = _tensor(batch["action"], 1)
        reward = _tensor(batch["reward"], 1)
        next_obs = _tensor(batch["next_obs"], 3)
        done = _tensor(batch["done"], 1)
        noise = _tensor(batch["noise"], 1)
        with torch.no_grad():
            smoothing = (noise * config.policy_noise).clamp(-config.noise_clip, config.noise_clip)
            next_action = (nets["actor_target"](next_obs) + smoothing).clamp(-1.0, 1.0)
            next_in = torch.cat([next_obs, next_action], 1)
            q_next = torch.min(nets["critic1_target"](next_in), nets["critic2_target"](next_in))
            y = reward + config.gamma * (1.0 - done) * q_next
        obs_action = torch.cat([obs, action], 1)
        q1_loss = torch.nn.functional.mse_loss(nets["critic1"](obs_action), y)
        q2_loss = torch.nn.functional.mse_loss(nets["critic2"](obs_action), y)
        critic_opt.zero_grad()
        (q1_loss + q2_loss).backward()
        critic_opt.step()
        critic_updates += 1
        if critic_updates % config.policy_delay == 0:
            actor_loss = -nets["critic1"](torch.cat([obs, nets["actor"](obs)], 1)).mean()
            actor_opt.zero_grad()
            actor_loss.backward()
            actor_opt.step()
            with torch.no_grad():
                for online, target in (("actor", "actor_target"), ("critic1", "critic1_target"),
                                       ("critic2", "critic2_target")):
                    for p, tp in zip(nets[online].parameters(), nets[target].parameters()):
                        tp.mul_(1.0 - config.tau).add_(config.tau * p)
    return {name: _weights(net) for name, net in nets.items()}
