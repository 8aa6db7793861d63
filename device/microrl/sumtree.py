"""K-ary sum tree: the index of prioritized experience replay, with O(log N) update and sampling.

Prioritized replay (Schaul et al., "Prioritized Experience Replay", ICLR 2016) draws transition
``i`` with probability ``p_i / sum(p)``. A sum tree holds the priorities in its leaves and in each
inner node the sum of its children, so that changing one priority and drawing one index both walk
a single root-to-leaf path. With ``k`` children per node instead of 2 (the K-ary sum tree of the
parallel prioritized replay buffer work) the path has ``log_k N`` levels: fewer, shorter steps
for the interpreter, and fewer inner nodes: ``N / (k - 1)`` of them, so ``k / (k - 1)`` floats
per leaf in all.

Layout: one flat preallocated float array, level by level, leaves first. Level 0 is the
``capacity`` leaves; level ``l + 1`` has ``ceil(size_l / k)`` nodes, node ``j`` being the sum of
nodes ``j*k .. j*k + k - 1`` of level ``l`` (fewer for the last node of a level); the last level
is the root, the last element of the array. ``_offsets`` and ``_sizes`` give each level's start
and length.

Cost: ``update`` sets a leaf and recomputes each ancestor as the sequential sum of its children
(``s = 0.0; s += child`` in order), ``O(k log_k N)``, so no error accumulates however often leaves
change: the tree is a function of its leaves alone. ``find`` scans at most ``k`` children per
level, ``O(k log_k N)``. Neither allocates anything but float objects. Storage is the firmware's
float, or single precision with ``MICRORL_FLOAT_BITS=32``.

The host mirror (``microrl_host.mirror.sumtree``) does the same float operations in the same order, so
in double precision both give the same tree, bit for bit, and the same sampled indices.
"""

from .backend import STORE_BITS, zeros

_KS = (2, 4, 8, 16)
_INF = float("inf")


class SumTree:
    """``SumTree(capacity, k)``: ``capacity`` leaves, all priority 0; ``k`` in 2, 4, 8, 16."""

    def __init__(self, capacity, k):
        if not isinstance(k, int) or k not in _KS:
            raise ValueError("k (children per node) must be 2, 4, 8 or 16, got %r" % (k,))
        if not isinstance(capacity, int) or capacity <= 0:
            raise ValueError("capacity must be a positive integer, got %r" % (capacity,))
        self.capacity = capacity
        self.k = k
        offsets = [0]
        sizes = [capacity]
        n = capacity
        while n > 1:
            offsets.append(offsets[-1] + n)
            n = (n + k - 1) // k
            sizes.append(n)
        self._offsets = tuple(offsets)
        self._sizes = tuple(sizes)
        self._levels = len(sizes)
        self._root = offsets[-1]
        # Every node of every level, leaves first, root last. Read only: use update().
        self.nodes = zeros("d" if STORE_BITS == 64 else "f", self._root + 1)

    def update(self, index, priority):
        """Set leaf ``index`` to ``priority`` (finite, >= 0) and recompute its ancestors."""
        if not 0 <= index < self.capacity:
            raise ValueError("index %r out of range for capacity %d" % (index, self.capacity))
        if not 0.0 <= priority < _INF:
            raise ValueError("priority must be finite and >= 0, got %r" % (priority,))
        t = self.nodes
        k = self.k
        offsets = self._offsets
        sizes = self._sizes
        old = t[index]
        t[index] = priority + 0.0  # + 0.0: a -0.0 is stored as 0.0, as the mirror does
        if t[index] == _INF:  # finite in double, too large for single-precision storage
            t[index] = old
            raise ValueError("priority %r overflows %d-bit storage" % (priority, STORE_BITS))
        i = index
        for level in range(1, self._levels):
            base = offsets[level - 1]
            first = (i // k) * k
            end = first + k
            if end > sizes[level - 1]:
                end = sizes[level - 1]
            s = 0.0
            for j in range(base + first, base + end):
                s += t[j]
            i //= k
            t[offsets[level] + i] = s

    def total(self):
        """The sum of all priorities (the root)."""
        return self.nodes[self._root]

    def get(self, index):
        """The priority of leaf ``index``."""
        if not 0 <= index < self.capacity:
            raise ValueError("index %r out of range for capacity %d" % (index, self.capacity))
        return self.nodes[index]

    def find(self, u):
        """The leaf where the prefix sum of priorities passes ``u`` (``0 <= u < total()``).

        A ``u`` at or past the total (float rounding) gives the last leaf with nonzero priority;
        a leaf of priority 0 is never returned."""
        if not u >= 0.0:
            raise ValueError("u must be >= 0, got %r" % (u,))
        if not self.nodes[self._root] > 0.0:
            raise ValueError("cannot search an empty sum tree (total priority 0)")
        return self._descend(u)

    def _descend(self, u):
        # The heart of sampling: at each level scan the node's children in order; stop at the
        # first child heavier than what is left of u, else take the last child with mass.
        t = self.nodes
        k = self.k
        offsets = self._offsets
        sizes = self._sizes
        node = 0
        for level in range(self._levels - 2, -1, -1):
            base = offsets[level]
            first = node * k
            end = first + k
            if end > sizes[level]:
                end = sizes[level]
            last = -1
            u_last = u
            for j in range(first, end):
                c = t[base + j]
                if u < c:
                    node = j
                    break
                if c > 0.0:
                    last = j
                    u_last = u
                u -= c
            else:
                node = last
                u = u_last
        return node

    def sample(self, rng, n, out):
        """Draw ``n`` leaves with probability priority / total into ``out[0:n]``; returns ``out``.

        For each draw in order: ``u = rng.uniform() * total()``, then ``find(u)``."""
        total = self.nodes[self._root]
        if not total > 0.0:
            raise ValueError("cannot sample from an empty sum tree (total priority 0)")
        descend = self._descend
        for i in range(n):
            out[i] = descend(rng.uniform() * total)
        return out
