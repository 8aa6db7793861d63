"""Prioritized replay for TD3, the mirror of device/microrl/prioritized.py (Schaul et al. 2016).

P(i) ~ p_i with p_i = (|TD error| + per_eps) ** per_alpha on a K-ary sum tree; new transitions get
the largest priority seen; importance-sampling weights (min_j p_j / p_i) ** beta, which is
(N P(i)) ** -beta divided by the batch's largest. Same draws and arithmetic as the device.
"""

import numpy as np

from microrl_host.mirror.sumtree import SumTree


class Prioritized:
    """Priorities for the slots of `buffer`; `batch` is the largest batch."""

    def __init__(self, config, buffer, batch, dtype=np.float64):
        self.config = config
        self.buffer = buffer
        self.tree = SumTree(buffer.capacity, config.per_k)
        self.slots = np.zeros(batch, np.int64)
        self.weights = np.zeros((batch, 1), dtype)
        self.max_priority = 1.0

    def added(self, slot):
        """The buffer just wrote `slot`: it (and a compressed slot's predecessor, now whole) get
        the largest priority; a slot without its next observation gets 0."""
        buf, tree, top = self.buffer, self.tree, self.max_priority
        tree.update(slot, top if buf.sampleable(slot) else 0.0)
        prev = (slot - 1) % buf.capacity
        if buf.size > 1 and tree.get(prev) == 0.0 and buf.sampleable(prev):
            tree.update(prev, top)

    def sample(self, rng, batch):
        """Draw slots by priority; returns the decoded batch views, sets the weights."""
        slots = self.tree.sample(rng, batch, self.slots)
        rows = self.buffer.decode(slots)
        p = self.tree.nodes[slots].astype(np.float64)
        np.power(p.min() / p, self.config.per_beta, out=self.weights[:, 0])
        return rows

    def update_priorities(self, dq, batch):
        """New priorities from critic 1's TD errors |Q1 - y| = |dL/dQ1| B / 2, in batch order."""
        config = self.config
        td = np.abs(dq[:, 0]) * (0.5 * batch)
        p = (td + config.per_eps) ** config.per_alpha
        self.tree.update_many(self.slots, p)
        self.max_priority = max(self.max_priority, float(p.max()))
