"""Compiled inner loops (numba): Sudoku search and grid-graph BFS.

Everything here works on flat int arrays; the typed wrappers live in ``sudoku.py`` and ``maze.py``.
``cache=True`` keeps the compiled code between runs (first call compiles, a few seconds).
"""

from typing import no_type_check

import numpy as np
from numba import njit

# ---- Sudoku ------------------------------------------------------------------------------------


@njit(cache=True)
@no_type_check  # keeps the jaxtyping test-time import hook away from compiled code
def _popcount(x: int) -> int:
    n = 0
    while x:
        x &= x - 1
        n += 1
    return n


@njit(cache=True)
@no_type_check  # keeps the jaxtyping test-time import hook away from compiled code
def sudoku_search(grid, box_rows, box_cols, limit, solution, order):
    """Depth-first search counting solutions up to ``limit``. Each node first places forced digits
    (naked singles, then hidden singles of rows/columns/boxes) and otherwise branches on the cell with
    the fewest candidates.

    ``grid``: int8/int32 [n] digits (0 = blank). ``order``: the digit order tried at each branch
    ([side] permutation of 0..side-1, for generators; identity for solving). Returns
    (n_solutions (-1 if the givens conflict), guesses before the first solution, total guesses).
    A guess is a placement at a cell that had two or more candidates.
    """
    side = box_rows * box_cols
    n = side * side
    full = (1 << side) - 1
    rows = np.zeros(side, np.int32)
    cols = np.zeros(side, np.int32)
    boxes = np.zeros(side, np.int32)
    g = np.zeros(n, np.int32)
    for i in range(n):
        v = grid[i]
        if v == 0:
            continue
        r = i // side
        c = i % side
        b = (r // box_rows) * box_rows + c // box_cols
        bit = 1 << (v - 1)
        if (rows[r] | cols[c] | boxes[b]) & bit:
            return -1, 0, 0
        rows[r] |= bit
        cols[c] |= bit
        boxes[b] |= bit
        g[i] = v
    cand = np.zeros(n, np.int32)
    units = np.empty((3 * side, side), np.int32)  # rows, columns, boxes
    for k in range(side):
        for j in range(side):
            units[k, j] = k * side + j
            units[side + k, j] = j * side + k
            br = (k // box_rows) * box_rows
            bc = (k % box_rows) * box_cols
            units[2 * side + k, j] = (br + j // box_cols) * side + bc + j % box_cols
    stack_cell = np.empty(n, np.int32)
    stack_left = np.empty(n, np.int32)  # candidates not yet tried
    stack_multi = np.empty(n, np.bool_)
    depth = 0
    count = 0
    guesses = 0
    first_guesses = 0
    descend = True
    while True:
        if descend:
            best = -1
            best_cnt = side + 1
            best_mask = 0
            for i in range(n):
                if g[i] == 0:
                    r = i // side
                    c = i % side
                    b = (r // box_rows) * box_rows + c // box_cols
                    m = full & ~(rows[r] | cols[c] | boxes[b])
                    cand[i] = m
                    cnt = _popcount(m)
                    if cnt < best_cnt:
                        best, best_cnt, best_mask = i, cnt, m
                        if cnt == 0:
                            break
                else:
                    cand[i] = 0
            if best_cnt >= 2:
                # hidden singles: a digit with one place left in a row, column or box is forced;
                # a digit with no place left is a contradiction
                for u in range(3 * side):
                    if u < side:
                        used = rows[u]
                    elif u < 2 * side:
                        used = cols[u - side]
                    else:
                        used = boxes[u - 2 * side]
                    once = 0
                    twice = 0
                    for k in range(side):
                        m = cand[units[u, k]]
                        twice |= once & m
                        once |= m
                    if (once | used) != full:
                        best_cnt = 0
                        break
                    single = once & ~twice
                    if single:
                        d = 0
                        while not (single >> d) & 1:
                            d += 1
                        for k in range(side):
                            if cand[units[u, k]] & (1 << d):
                                best, best_cnt, best_mask = units[u, k], 1, 1 << d
                                break
                        break
            if best == -1:  # every cell filled: a solution
                count += 1
                if count == 1:
                    for i in range(n):
                        solution[i] = g[i]
                    first_guesses = guesses
                if count >= limit:
                    break
                descend = False
            elif best_cnt == 0:
                descend = False
            else:
                stack_cell[depth] = best
                stack_left[depth] = best_mask
                stack_multi[depth] = best_cnt > 1
                depth += 1
        # place the next untried candidate of the top frame, popping exhausted frames
        placed = False
        while depth > 0 and not placed:
            top = depth - 1
            i = stack_cell[top]
            r = i // side
            c = i % side
            b = (r // box_rows) * box_rows + c // box_cols
            if g[i] != 0:  # undo the previous try
                bit = 1 << (g[i] - 1)
                rows[r] &= ~bit
                cols[c] &= ~bit
                boxes[b] &= ~bit
                g[i] = 0
            left = stack_left[top]
            if left == 0:
                depth -= 1
                continue
            for k in range(side):
                d = order[k]
                if left & (1 << d):
                    stack_left[top] = left & ~(1 << d)
                    g[i] = d + 1
                    rows[r] |= 1 << d
                    cols[c] |= 1 << d
                    boxes[b] |= 1 << d
                    if stack_multi[top]:
                        guesses += 1
                    placed = True
                    break
        if not placed:
            break
        descend = True
    return count, first_guesses, guesses


@njit(cache=True)
@no_type_check  # keeps the jaxtyping test-time import hook away from compiled code
def sudoku_search_many(grids, box_rows, box_cols, limit, solutions, out):
    """:func:`sudoku_search` over rows of ``grids`` [m, n]; ``out`` [m, 3] gets its results."""
    side = box_rows * box_cols
    order = np.arange(side)
    for j in range(grids.shape[0]):
        res = sudoku_search(grids[j], box_rows, box_cols, limit, solutions[j], order)
        out[j, 0] = res[0]
        out[j, 1] = res[1]
        out[j, 2] = res[2]


# ---- grid graphs (mazes) ---------------------------------------------------------------------


@njit(cache=True)
@no_type_check  # keeps the jaxtyping test-time import hook away from compiled code
def bfs(open_cells, height, width, start, order, dist, parent):
    """BFS over open cells (4-neighbourhood) from ``start``; ``order`` [4] lists the neighbour
    directions tried (0 = row+1, 1 = col-1, 2 = col+1, 3 = row-1); ``parent`` records the first
    discoverer. ``dist`` is -1 where unreachable. Returns the number of cells reached."""
    n = height * width
    for i in range(n):
        dist[i] = -1
        parent[i] = -1
    queue = np.empty(n, np.int32)
    head = 0
    tail = 0
    dist[start] = 0
    queue[tail] = start
    tail += 1
    while head < tail:
        u = queue[head]
        head += 1
        r = u // width
        c = u % width
        for k in range(4):
            dr = 0
            dc = 0
            d = order[k]
            if d == 0:
                dr = 1
            elif d == 1:
                dc = -1
            elif d == 2:
                dc = 1
            else:
                dr = -1
            rr = r + dr
            cc = c + dc
            if rr < 0 or rr >= height or cc < 0 or cc >= width:
                continue
            v = rr * width + cc
            if open_cells[v] and dist[v] < 0:
                dist[v] = dist[u] + 1
                parent[v] = u
                queue[tail] = v
                tail += 1
    return tail


@njit(cache=True)
@no_type_check  # keeps the jaxtyping test-time import hook away from compiled code
def count_shortest_paths(open_cells, height, width, start, goal):
    """Number of distinct shortest start->goal paths (float64: they can exceed 2**63)."""
    n = height * width
    dist = np.empty(n, np.int32)
    parent = np.empty(n, np.int32)
    order = np.arange(4)
    bfs(open_cells, height, width, start, order, dist, parent)
    if dist[goal] < 0:
        return 0.0
    ways = np.zeros(n, np.float64)
    ways[start] = 1.0
    # process cells by distance
    maxd = dist[goal]
    for level in range(1, maxd + 1):
        for v in range(n):
            if dist[v] != level:
                continue
            r = v // width
            c = v % width
            total = 0.0
            if r > 0 and dist[v - width] == level - 1:
                total += ways[v - width]
            if r < height - 1 and dist[v + width] == level - 1:
                total += ways[v + width]
            if c > 0 and dist[v - 1] == level - 1:
                total += ways[v - 1]
            if c < width - 1 and dist[v + 1] == level - 1:
                total += ways[v + 1]
            ways[v] = total
    return ways[goal]


@njit(cache=True)
@no_type_check  # keeps the jaxtyping test-time import hook away from compiled code
def _may_reach(open_cells, height, width, members, min_moves, order, dist, parent):
    """False only if the component's diameter is surely below ``min_moves``: double sweep for a
    lower bound, then the eccentricity of the sweep path's midpoint m gives diameter <= 2 ecc(m)."""
    bfs(open_cells, height, width, members[0], order, dist, parent)
    a = members[0]
    for v in members:
        if dist[v] > dist[a]:
            a = v
    bfs(open_cells, height, width, a, order, dist, parent)
    b = a
    for v in members:
        if dist[v] > dist[b]:
            b = v
    if dist[b] >= min_moves:
        return True
    m = b
    for _ in range(dist[b] // 2):
        m = parent[m]
    bfs(open_cells, height, width, m, order, dist, parent)
    ecc = 0
    for v in members:
        if dist[v] > ecc:
            ecc = dist[v]
    return 2 * ecc >= min_moves


@njit(cache=True)
@no_type_check  # keeps the jaxtyping test-time import hook away from compiled code
def far_pairs(open_cells, height, width, min_moves, cap, out_s, out_g):
    """All ordered pairs (s, g) of open cells whose shortest path has >= ``min_moves`` moves.

    Returns (number of such pairs, number of ordered pairs of distinct open cells); at most
    ``cap`` pairs are written to ``out_s``/``out_g``. Cheap rejections first: components smaller
    than min_moves + 1 cells are skipped, and a component whose eccentricity bound 2*ecc(u) from
    one BFS is below ``min_moves`` cannot hold such a pair.
    """
    n = height * width
    dist = np.empty(n, np.int32)
    parent = np.empty(n, np.int32)
    comp = np.full(n, -1, np.int32)
    order = np.arange(4)
    n_open = 0
    for i in range(n):
        if open_cells[i]:
            n_open += 1
    found = 0
    ncomp = 0
    for seed in range(n):
        if not open_cells[seed] or comp[seed] >= 0:
            continue
        size = bfs(open_cells, height, width, seed, order, dist, parent)
        ecc = 0
        members = np.empty(size, np.int32)
        m = 0
        for v in range(n):
            if dist[v] >= 0:
                comp[v] = ncomp
                members[m] = v
                m += 1
                if dist[v] > ecc:
                    ecc = dist[v]
        ncomp += 1
        if size < min_moves + 1 or 2 * ecc < min_moves:
            continue
        if not _may_reach(open_cells, height, width, members, min_moves, order, dist, parent):
            continue
        for a in range(size):
            s = members[a]
            bfs(open_cells, height, width, s, order, dist, parent)
            for b in range(size):
                g = members[b]
                if dist[g] >= min_moves:
                    if found < cap:
                        out_s[found] = s
                        out_g[found] = g
                    found += 1
    return found, n_open * (n_open - 1)
