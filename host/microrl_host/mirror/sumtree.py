"""K-ary sum tree for prioritized replay, the numpy mirror of device/microrl/sumtree.py.

Prioritized replay (Schaul et al., "Prioritized Experience Replay", ICLR 2016) draws transition
`i` with probability `p_i / sum(p)`. A sum tree keeps the priorities in its leaves and in each inner
node the sum of its `k` children (the K-ary sum tree of the parallel prioritized replay buffer
work; `k` in 2, 4, 8, 16), so updating a priority and drawing an index each walk one path of
`log_k N` levels.

Layout, as on the device: one flat float64 array `nodes`, level by level, leaves first. Level 0 is
the `capacity` leaves; level `l + 1` has `ceil(size_l / k)` nodes, node `j` being the sum of nodes
`j*k .. j*k + k - 1` of level `l` (fewer for a level's last node); the root is the last element.
About `k / (k - 1)` floats per leaf.

Cost and arithmetic: every parent is the sequential sum of its children (`s = 0.0; s += child`
in order), recomputed on each change, `O(k log_k N)` per update, so the tree is a function of its
leaves alone and never drifts. `update_many` does the same sums for a batch of leaves at once;
`sample` draws `rng.uniform_array(n)` and descends all `n` draws together, one level at a time,
the scan over a node's children done for all draws with one sequential `subtract.accumulate`:
exactly the device's float operations in the device's order, so in float64 the tree and the
sampled indices equal the device's bit for bit.
"""

import math
import operator

import numpy as np

KS = (2, 4, 8, 16)


def _check_priority(priority):
    if not (0.0 <= priority < math.inf):
        raise ValueError(f"priority must be finite and >= 0, got {priority!r}")


class SumTree:
    """`SumTree(capacity, k)`: `capacity` leaves, all priority 0; `k` children per node."""

    def __init__(self, capacity, k):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k not in KS:
            raise ValueError(f"k (children per node) must be 2, 4, 8 or 16, got {k!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) \
                or capacity <= 0:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self.k = int(k)
        offsets = [0]
        sizes = [self.capacity]
        n = self.capacity
        while n > 1:
            offsets.append(offsets[-1] + n)
            n = -(-n // self.k)
            sizes.append(n)
        self._offsets = tuple(offsets)
        self._sizes = tuple(sizes)
        self._levels = len(sizes)
        self._root = offsets[-1]
        self.nodes = np.zeros(self._root + 1, np.float64)  # read only: use update()

    # ---- priorities ---------------------------------------------------------------------------

    def _check_index(self, index):
        """`index` as an int; a ValueError when out of range."""
        i = operator.index(index)
        if not 0 <= i < self.capacity:
            raise ValueError(f"index {index!r} out of range for capacity {self.capacity}")
        return i

    def update(self, index, priority):
        """Set leaf `index` to `priority` (finite, >= 0) and recompute its ancestors."""
        i = self._check_index(index)
        _check_priority(priority)
        t = self.nodes
        k = self.k
        t[i] = float(priority) + 0.0  # + 0.0: -0.0 becomes 0.0, as on the device
        for level in range(1, self._levels):
            base = self._offsets[level - 1]
            first = (i // k) * k
            end = min(first + k, self._sizes[level - 1])
            s = 0.0
            for c in t[base + first:base + end].tolist():
                s += c
            i //= k
            t[self._offsets[level] + i] = s

    def update_many(self, indices, priorities):
        """`update(i, p)` for each pair in order, vectorised: the same tree as the single updates
        (the last of repeated indices wins)."""
        idx = np.asarray(indices)
        pri = np.asarray(priorities, dtype=np.float64)
        if idx.ndim != 1 or pri.shape != idx.shape:
            raise ValueError(f"indices and priorities must be 1-D of one length, got shapes "
                             f"{idx.shape} and {pri.shape}")
        if idx.size == 0:
            return
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be integers, got dtype {idx.dtype}")
        bad = (idx < 0) | (idx >= self.capacity)
        if bad.any():
            raise ValueError(f"index {idx[bad][0]!r} out of range for capacity {self.capacity}")
        bad = ~((pri >= 0.0) & (pri < math.inf))
        if bad.any():
            raise ValueError(f"priority must be finite and >= 0, got {pri[bad][0]!r}")
        # Last occurrence of each index: first occurrence in the reversed sequence.
        leaves, where = np.unique(idx[::-1], return_index=True)
        t = self.nodes
        t[leaves] = pri[::-1][where] + 0.0
        k = self.k
        child = np.arange(k)
        nodes = leaves.astype(np.int64)
        for level in range(1, self._levels):
            base = self._offsets[level - 1]
            size = self._sizes[level - 1]
            parents = np.unique(nodes // k)
            kids = parents[:, None] * k + child  # (m, k) child positions in level - 1
            vals = np.where(kids < size, t[base + np.minimum(kids, size - 1)], 0.0)
            # Sequential sums along each row (accumulate never reorders, unlike sum); a missing
            # child adds 0.0, which leaves a sum of nonnegative numbers unchanged.
            t[self._offsets[level] + parents] = np.add.accumulate(vals, axis=1)[:, -1]
            nodes = parents

    def total(self):
        """The sum of all priorities (the root)."""
        return float(self.nodes[self._root])

    def get(self, index):
        """The priority of leaf `index`."""
        return float(self.nodes[self._check_index(index)])

    # ---- sampling -----------------------------------------------------------------------------

    def find(self, u):
        """The leaf where the prefix sum passes `u` (`0 <= u < total()`); a `u` at or past the
        total gives the last leaf with nonzero priority, never a leaf of priority 0."""
        if not u >= 0.0:
            raise ValueError(f"u must be >= 0, got {u!r}")
        if not self.nodes[self._root] > 0.0:
            raise ValueError("cannot search an empty sum tree (total priority 0)")
        return int(self._descend(np.array([u], np.float64))[0])

    def _descend(self, u):
        """The leaf index for every draw in `u` (float64): the device's scan for all draws at once.

        Per level, the children of every draw's node form a row of `c`; the device's running
        remainder before child `j`, `u - c_0 - ... - c_(j-1)` subtracted one at a time, is column
        `j` of `np.subtract.accumulate` over the row `[u, c_0, ..., c_(k-2)]` (accumulate is
        sequential: the same float operations in the same order). The chosen child is the first
        `j` with remainder < `c_j`, else the last child with mass; both keep the device's
        remainder. Remainders past the chosen child are computed and ignored."""
        t = self.nodes
        k = self.k
        n = u.shape[0]
        rows = np.arange(n)
        child = np.arange(k)
        node = np.zeros(n, np.int64)
        scan = np.empty((n, k), np.float64)
        for level in range(self._levels - 2, -1, -1):
            base = self._offsets[level]
            size = self._sizes[level]
            pos = node[:, None] * k + child  # (n, k) child positions in this level
            # A position past the level's end acts as a child of priority 0: never chosen, and
            # u - 0.0 == u (the device does not visit it at all).
            c = np.where(pos < size, t[base + np.minimum(pos, size - 1)], 0.0)
            scan[:, 0] = u
            scan[:, 1:] = c[:, :-1]
            remainder = np.subtract.accumulate(scan, axis=1)
            hit = remainder < c
            found = hit.any(axis=1)
            last = (k - 1) - np.argmax(c[:, ::-1] > 0.0, axis=1)  # last child with mass
            j = np.where(found, np.argmax(hit, axis=1), last)
            u = remainder[rows, j]
            node = pos[rows, j]
        return node

    def sample(self, rng, n, out=None):
        """Draw `n` leaves with probability priority / total (`u = rng.uniform() * total()` for
        each draw in order, then `find(u)`); returns them as int64, in `out` if given."""
        total = self.nodes[self._root]
        if not total > 0.0:
            raise ValueError("cannot sample from an empty sum tree (total priority 0)")
        u = rng.uniform_array(n) * float(total)
        leaves = self._descend(u)
        if out is None:
            return leaves
        out[:n] = leaves
        return out
