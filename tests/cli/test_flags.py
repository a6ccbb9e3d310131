"""The library names its parameters; the CLI shows their flags, and only bad input counts as bad input."""

import pytest

from airinterp.cli._common import in_flags
from tests.helpers import invoke


@pytest.mark.parametrize(
    ("library", "cli"),
    [
        ("n_act 0: expected a whole number", "--n-act 0: expected a whole number"),
        ("checkpoint x is a sudoku model but task is maze", "--checkpoint x is a sudoku model but --task is maze"),
        ("global_batch_size 4000 is larger; lower global_batch_size or raise eval_interval",
         "--batch-size 4000 is larger; lower --batch-size or raise --eval-interval"),
        ("data: not given and the card names none", "--data: not given and the card names none"),
        ("the source of the data is here", "the source of the data is here"),  # plain words inside a clause stay
        ("seq_len 16 / vocab 11 do not match", "seq_len 16 / vocab 11 do not match"),  # not a parameter
    ],
)
def test_in_flags(library, cli):
    assert in_flags(library) == cli


def test_a_library_bug_is_not_reported_as_bad_input(monkeypatch, tmp_path):
    """A plain ValueError from inside the library is a bug: exit 3 with 'unexpected', not a bad-input line."""
    import airinterp.analysis.suite as suite

    def broken(*args, **kwargs):
        raise ValueError("an internal invariant broke")

    monkeypatch.setattr(suite, "decode_section", broken)
    monkeypatch.chdir(tmp_path)
    from airinterp.cli._common import main

    monkeypatch.setattr("sys.argv", ["airinterp", "decode", "--n-puzzles", "2"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 3
    res = invoke("decode", "--n-puzzles", "0")  # bad input stays one line, exit 2
    assert res.exit_code == 2
