"""Bad model inputs (tokens, puzzle ids, n_act, puzzle text) get a clear error naming the problem."""

import pytest
import torch

from airinterp.errors import InputError
from tests.helpers import make_model, make_tokens


def test_wrong_sequence_length():
    with pytest.raises(ValueError, match="sequence length 15 does not match the model's seq_len 16"):
        make_model()(torch.ones(2, 15, dtype=torch.long))


def test_tokens_outside_vocabulary():
    tokens = make_tokens()
    tokens[0, 3] = 11
    with pytest.raises(ValueError, match=r"token ids \[11\] are outside the vocabulary \[0, 11\)"):
        make_model()(tokens)
    tokens[0, 3] = -1
    with pytest.raises(ValueError, match="outside the vocabulary"):
        make_model()(tokens)


def test_float_or_misshapen_tokens():
    with pytest.raises(ValueError, match="integer ids"):
        make_model()(torch.ones(2, 16))
    with pytest.raises(ValueError, match=r"shape \[batch >= 1, 16\]"):
        make_model()(torch.ones(16, dtype=torch.long))


def test_batch_and_puzzle_id_mismatch():
    model = make_model()
    with pytest.raises(ValueError, match="puzzle_identifiers has 3 entries but the batch has 2 puzzles"):
        model(make_tokens(), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"puzzle identifiers must lie in \[0, 1\)"):
        model(make_tokens(), torch.tensor([0, 1]))


def test_bad_puzzle_text():
    model = make_model()
    with pytest.raises(ValueError, match="puzzle 1: Sudoku puzzle has 15 cells, expected 16"):
        model.to_tokens(["1234" * 4, "123" * 5])
    with pytest.raises(ValueError, match="character 'x' at cell 2"):
        model.to_tokens("12x4" + "." * 12)
    assert model.to_tokens("12.4" + "." * 12).tolist()[0][:4] == [2, 3, 1, 5]



@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (None, r"tokens: expected puzzle text .* got NoneType"),
        (5, r"tokens: expected puzzle text .* got int"),
        (3.5, r"got float"),
        (b"1234", r"tokens: got bytes; decode puzzle text to str first"),
        ([], r"tokens: empty batch"),
        ([[1] * 36], r"sequence length 36 does not match the model's seq_len 16"),
        ([[1] * 16, [1] * 15], r"could not read list as one"),
        (["1" * 16, None], r"puzzle 1: expected puzzle text \(str\), got NoneType"),
        (torch.zeros(0, 16, dtype=torch.long), r"shape \[batch >= 1, 16\], got \(0, 16\)"),
        (torch.ones(2, 16, dtype=torch.bool), r"integer ids, got dtype torch.bool"),
    ],
)
def test_bad_tokens(tokens, message):
    model = make_model()
    with pytest.raises(ValueError, match=message):
        model(tokens)
    with pytest.raises(ValueError, match=message):
        model.to_tokens(tokens)


def test_token_ids_as_nested_lists_are_accepted():
    model = make_model()
    ids = make_tokens(batch=1)
    assert torch.equal(model.to_tokens(ids.tolist()), ids)
    assert torch.equal(model(ids.tolist()), model(ids))


@pytest.mark.parametrize("n_act", [0, -1, 2.5, "3", True])
def test_bad_n_act(n_act):
    with pytest.raises(ValueError, match="n_act must be a whole number of ACT steps >= 1"):
        make_model()(make_tokens(), n_act=n_act)


@pytest.mark.parametrize("ids", [torch.tensor([0.0, 0.0]), torch.tensor([True, False]), "ab", [[0, 0]]])
def test_bad_puzzle_identifiers(ids):
    with pytest.raises(ValueError, match="puzzle_identifiers must be a 1-D integer tensor"):
        make_model()(make_tokens(), ids)


@pytest.mark.parametrize("kwargs, needle", [({"site": "hook_resid"}, "site 'hook_resid' is no hook site"),
                                            ({"update": "H0_1"}, "update 'H0_1' is no update name"),  # int("0_1") is 1
                                            ({"act": -1}, "act -1"), ({"layer": [0, "1"]}, "layer '1'"),
                                            ({"scope": "layer"}, "scope 'layer'")])  # fmt: skip
def test_select_refuses_values_no_hook_can_have(kwargs, needle):
    """select() with a misspelt value matched nothing, silently (issue 22.9)."""
    from airinterp.model import select

    with pytest.raises(InputError, match=needle):
        select(**kwargs)
    assert select(site="attn.hook_pattern", stage="H", layer=[0, 1], update=lambda u: True)("act.0.H0.blocks.1.attn.hook_pattern")


def test_puzzle_text_takes_ascii_digits_only():
    from airinterp.tasks.sudoku import SUDOKU_9, parse

    good = "1" + "." * 80
    assert parse(good, SUDOKU_9)[0, 0] == 1
    with pytest.raises(InputError, match="character '٣' at cell 0"):  # int("٣") is 3
        parse("٣" + "." * 80, SUDOKU_9)



def test_select_checks_any_collection_of_steps():
    """A range (or any collection) of steps is checked element by element and still matches."""
    from airinterp.model import select

    assert select(layer=1, act=range(2))("act.1.H0.blocks.1.attn.hook_pattern")
    assert not select(layer=0)("act.1.H0.blocks.1.attn.hook_pattern")
    with pytest.raises(InputError, match="act -1"):
        select(act=range(-1, 2))
