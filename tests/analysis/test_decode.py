"""Decoded rollouts through hooks on the model's own forward."""

import numpy as np
import pytest
import torch

from airinterp.analysis.decode import DecodeRecorder, decode_rollouts, record
from airinterp.analysis.run import sample_puzzles, tokens_batch
from airinterp.model import select
from tests.helpers import make_model, make_tokens


@pytest.mark.parametrize("variant", ["Lx_H", "L2x_H2x_input_token_prepend", "L2x_H2x_input_token_prepend_no_strip"])
def test_recorder_equals_decoding_the_cache(variant):
    model = make_model(variant=variant)
    tokens = make_tokens(batch=3)
    rec = DecodeRecorder(model, probs=True)
    out = record(model, tokens_batch(model, tokens), rec, n_act=4)  # one step beyond halt_max_steps
    _, cache = model.run_with_cache(tokens, n_act=4, names_filter=select(site=["hook_out", "hook_zH_init", "hook_zL_init"]))
    n = model.config.n_updates
    last = {"zH": model.decode(cache["hook_zH_init"]).numpy(), "zL": model.decode(cache["hook_zL_init"]).numpy()}
    for k in range(4 * n):
        u = model.schedule[k % n]
        last[u.state] = model.decode(cache[f"act.{k // n}.{u.name}.hook_out"]).numpy()
        for s in ("zL", "zH"):
            assert (rec.batch[s][:, k] == last[s]).all(), (k, s)
    assert (rec.batch["zH"][:, -1] == out.logits.argmax(-1).numpy()).all()
    assert rec.batch["zL_p"].dtype == np.float16 and (rec.batch["zL_p"] > 0).all()


def test_decoding_changes_nothing_and_frame_is_tidy(tiny_data):
    model = make_model()
    idx = sample_puzzles(tiny_data.n_examples, 4, seed=0)
    r = decode_rollouts(model, tiny_data, idx, batch_size=3)
    with torch.inference_mode():
        base = model(torch.from_numpy(np.asarray(tiny_data.data["inputs"][idx], np.int64))).argmax(-1).numpy()
    assert (r.output == base).all() and (r.zH[:, -1] == base).all()
    df = r.frame()
    assert list(df.columns) == ["puzzle", "substep", "state", "cell", "token"]
    assert len(df) == 4 * 18 * 2 * 16 and df.substep.min() == 0 and df.substep.max() == 17
    assert set(df.puzzle) == set(idx.tolist())


def test_seeded_sample():
    a = sample_puzzles(500, 20, seed=1)
    assert (a == sample_puzzles(500, 20, seed=1)).all() and not (a == sample_puzzles(500, 20, seed=2)).all()
    assert len(set(a.tolist())) == 20 and (np.diff(a) > 0).all()
    with pytest.raises(ValueError, match="only 500 puzzles"):
        sample_puzzles(500, 501, seed=0)
