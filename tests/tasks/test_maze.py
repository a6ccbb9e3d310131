"""Maze rules and the Maze-Hard-like generator."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airinterp.tasks import maze as M
from airinterp.tasks.maze_data import describe, generate_mazes

SMALL = M.MazeSpec(5)


def grid(rows: list[str]) -> np.ndarray:
    return M.parse("".join(rows), M.MazeSpec(len(rows)))


@given(st.integers(3, 12), st.data())
def test_text_round_trip(side, data):
    cells = data.draw(st.lists(st.sampled_from("# SGo"), min_size=side * side, max_size=side * side))
    text = "".join(cells)
    g = M.parse(text, M.MazeSpec(side))
    assert M.to_text(g) == text
    assert M.parse(M.render(g), M.MazeSpec(side)).tolist() == g.tolist()
    assert M.decode(M.encode(text, side * side)) == text


def test_bad_mazes():
    with pytest.raises(ValueError, match="maze has 24 cells, expected 25"):
        M.parse("#" * 24, SMALL)
    with pytest.raises(ValueError, match="character 'x' at cell 2"):
        M.parse("##x" + "#" * 22, SMALL)
    with pytest.raises(ValueError, match="exactly one S and one G, found 0 S and 1 G"):
        M.solve(grid(["G    ", "     ", "     ", "     ", "     "]))
    with pytest.raises(ValueError, match="cannot be reached"):
        M.solve(grid(["S#   ", "##   ", "     ", "     ", "    G"]))


def test_shortest_path_and_tie_break():
    open3 = grid(["S  ", "   ", "  G"])
    assert M.n_shortest_paths(open3) == 6  # C(4, 2)
    # default order tries down first from S: the path goes down the first column
    assert M.to_text(M.solve(open3)) == "S  o  ooG"
    assert M.to_text(M.solve(open3, "right,down,left,up")) == "Soo  o  G"
    with pytest.raises(ValueError, match="must order all of"):
        M.solve(open3, "down,left")
    corridor = grid(["S#   ", " # # ", " # # ", " # # ", "   #G"])
    path = M.shortest_path(corridor)  # the only way: a snake of 16 moves
    assert len(path) == 17 and M.n_shortest_paths(corridor) == 1
    corridor[4, 2] = M.WALL
    assert M.shortest_path(corridor) is None and M.n_shortest_paths(corridor) == 0


def test_path_validity_errors_and_adjacency():
    q = grid(["S  ", "## ", "G  "])
    a = M.solve(q)
    assert M.to_text(a) == "Soo##oGoo"
    assert M.path_is_valid(a, q) and M.is_shortest(a, q)
    broken = a.copy()
    broken[1, 2] = M.OPEN
    assert not M.path_is_valid(broken, q)
    through_wall = a.copy()
    through_wall[1, 0] = M.PATH
    assert not M.path_is_valid(through_wall, q)
    err = M.errors(broken, a)
    assert err.sum() == 1 and err[1, 2]
    adj = M.adjacent(err)
    assert adj.sum() == 3 and adj[0, 2] and adj[2, 2] and adj[1, 1] and not adj[1, 2]
    assert M.adjacent(err, diagonal=True).sum() == 5
    assert M.errors(np.full_like(a, M.OPEN), a, path_only=True).sum() == 5  # the five o cells


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 10_000))
def test_generated_mazes_follow_the_recipe(seed):
    spec = M.MazeSpec(10)
    mazes, stats = generate_mazes(4, seed, spec)
    assert stats["min_path_cells"] == spec.default_min_path_cells == 37
    for m in mazes:
        q, a = m.question, m.answer
        assert q.shape == (10, 10) and set(np.unique(q)) <= {M.WALL, M.OPEN, M.START, M.GOAL}
        assert (q == M.START).sum() == 1 and (q == M.GOAL).sum() == 1
        assert 30 <= m.n_walls <= 50 and (q == M.WALL).sum() == m.n_walls
        s, g = M.endpoints(q)
        assert M.distances(q, s).reshape(-1)[g] + 1 == m.path_cells >= 37
        assert M.is_shortest(a, q) and np.array_equal(a, M.solve(q))
    layouts = {np.packbits(m.question == M.WALL).tobytes() for m in mazes}
    assert len(layouts) == len(mazes)


def test_generation_is_seeded_and_describable():
    spec = M.MazeSpec(8)
    a, _ = generate_mazes(3, 7, spec, min_path_cells=20)
    b, _ = generate_mazes(3, 7, spec, min_path_cells=20)
    assert all(np.array_equal(x.answer, y.answer) for x, y in zip(a, b, strict=True))
    d = describe(a, spec)
    assert d["n"] == 3 and 0.3 <= d["wall_fraction"]["median"] <= 0.5 and d["path_cells"]["min"] >= 20
