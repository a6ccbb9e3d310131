"""airinterp.io: a file or directory appears whole or not at all."""

import os

import pytest

from airinterp.io import atomic_file, atomic_write_text, staging_dir


def test_atomic_file_leaves_the_old_file_on_an_error(tmp_path):
    path = tmp_path / "a" / "t.txt"
    atomic_write_text(path, "old\n")
    with pytest.raises(RuntimeError), atomic_file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old\n" and sorted(p.name for p in path.parent.iterdir()) == ["t.txt"]


def test_atomic_file_takes_the_umask_mode(tmp_path):
    old = os.umask(0o027)
    try:
        p = atomic_write_text(tmp_path / "m.txt", "x")
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o640


def test_staging_dir_replaces_whole_or_merges(tmp_path):
    d = tmp_path / "out"
    with staging_dir(d) as tmp:
        (tmp / "a").write_text("1")
    with staging_dir(d) as tmp:  # replace: the old directory's files are gone
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in d.iterdir()) == ["b"]
    with staging_dir(d, merge=True) as tmp:  # merge: files move in, others stay
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in d.iterdir()) == ["b", "c"]
    with pytest.raises(KeyError), staging_dir(d) as tmp:
        (tmp / "d").write_text("4")
        raise KeyError("killed")
    assert sorted(p.name for p in d.iterdir()) == ["b", "c"] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staging_dir_keeps_the_aside_copy_until_the_new_one_is_in_place(tmp_path):
    d, aside = tmp_path / "step_2", tmp_path / "step_2.old"
    aside.mkdir()
    (aside / "state.pt").write_text("old")  # a kill between the two renames of an earlier save
    with staging_dir(d, aside=aside) as tmp:
        assert aside.exists()
        (tmp / "state.pt").write_text("new")
    assert (d / "state.pt").read_text() == "new" and not aside.exists()
