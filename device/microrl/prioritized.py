"""Prioritized replay (Schaul, Quan, Antonoglou and Silver, 2016) for TD3, on a K-ary sum tree.

P(i) ~ p_i with p_i = (|TD error| + per_eps) ** per_alpha; a new transition gets the largest
priority seen so far. Importance-sampling weights (N P(i)) ** -beta, divided by the batch's largest,
are (min_j p_j / p_i) ** beta. TD3 imports this module only when ``config.prioritized`` is set, so a
board that does not use it does not hold its code.
"""

from .backend import K, zeros
from .sumtree import SumTree


class Prioritized:
    """Priorities for the slots of ``buffer``; ``n`` is the largest batch."""

    def __init__(self, config, buffer, n):
        self.config = config
        self.buffer = buffer
        self.tree = SumTree(buffer.capacity, config.per_k)
        self.slots = zeros("i", n)
        self.weights, self._w = K.staged(n, 1)
        self.max_priority = 1.0

    def clear(self):
        """No priorities (with the buffer cleared): every node 0, new steps at priority 1."""
        nodes = self.tree.nodes
        for i in range(len(nodes)):
            nodes[i] = 0.0
        self.max_priority = 1.0

    def added(self, slot):
        """The buffer just wrote ``slot``: it (and a compressed slot's predecessor, now whole)
        get the largest priority; a slot without its next observation gets 0."""
        buf, tree, top = self.buffer, self.tree, self.max_priority
        tree.update(slot, top if buf.sampleable(slot) else 0.0)
        prev = (slot - 1) % buf.capacity
        if buf.size > 1 and tree.get(prev) == 0.0 and buf.sampleable(prev):
            tree.update(prev, top)

    def sample(self, rng, n, batch):
        """Draw n slots by priority into ``batch`` and set their importance-sampling weights."""
        slots, tree, buf, w = self.slots, self.tree, self.buffer, self._w
        tree.sample(rng, n, slots)
        low = None
        for i in range(n):
            buf.decode(slots[i], batch, i)
            p = tree.get(slots[i])
            w[i] = p  # the priority, turned into the weight below
            if low is None or p < low:
                low = p
        beta = self.config.per_beta
        for i in range(n):
            w[i] = (low / w[i]) ** beta

    def update_priorities(self, dq, n, start=0):
        """New priorities from critic 1's TD errors |Q1 - y| = |dL/dQ1| B / 2 (B the batch size),
        in batch order: ``dq`` (a flat array) holds rows start to start + n of the batch."""
        c = self.config
        half = 0.5 * c.batch_size
        slots, tree = self.slots, self.tree
        for i in range(n):
            p = (abs(dq[i]) * half + c.per_eps) ** c.per_alpha
            tree.update(slots[start + i], p)
            if p > self.max_priority:
                self.max_priority = p
