"""Paths a card names are resolved against the card, never the working directory (issue 22.3)."""

import json
import shutil

from airinterp.checkpoints import REPO, Checkpoint
from tests.helpers import invoke, make_dataset


def test_a_cards_test_data_is_the_cards_not_the_working_directorys(tmp_path, monkeypatch):
    decoy = tmp_path / "checkpoints" / "data" / "sudoku6"  # the same relative path, another dataset
    make_dataset(decoy, n_train=4, n_test=4, seq=36, vocab=11)
    monkeypatch.chdir(tmp_path)
    ck = Checkpoint(REPO / "checkpoints" / "sudoku6_Lx_H")
    assert ck.resolve(ck.card["eval_data"]) == REPO / "checkpoints" / "data" / "sudoku6"
    res = invoke("decode", "--task", "sudoku", "--n-puzzles", "2", "--n-act", "1", "--out", tmp_path / "dec")
    assert res.exit_code == 0, res.output
    assert f"data: {REPO / 'checkpoints' / 'data' / 'sudoku6'}" in res.output  # what was used is said
    config = json.loads((tmp_path / "dec" / "config.json").read_text())
    assert config["data"] == str(REPO / "checkpoints" / "data" / "sudoku6") and config["n_split"] == 500


def test_a_copied_checkpoint_finds_data_beside_it_first(tmp_path):
    """A card's relative path is relative to the card's own directory, then the layout it sits in."""
    dest = tmp_path / "mine" / "checkpoints" / "s6"
    shutil.copytree(REPO / "checkpoints" / "sudoku6_Lx_H", dest)
    ck = Checkpoint(dest)
    assert ck.resolve("checkpoints/data/sudoku6") == REPO / "checkpoints" / "data" / "sudoku6"  # not beside it: the checkout's
    make_dataset(tmp_path / "mine" / "checkpoints" / "data" / "sudoku6", n_train=4, n_test=4, seq=36, vocab=11)
    assert ck.resolve("checkpoints/data/sudoku6") == tmp_path / "mine" / "checkpoints" / "data" / "sudoku6"
    assert ck.resolve("nowhere/at/all") is None


def test_analysis_outputs_never_go_into_a_checkpoint_run_or_dataset(tmp_path, trained_run, dataset):
    """decode --out RUN replaced the run's config.json (then train --resume was refused): refused now,
    nothing written, for the run, a checkpoint inside it, the dataset and a directory inside any of them."""
    from tests.helpers import assert_clean_error, snapshot

    before = snapshot(trained_run, dataset)
    ck = trained_run / "checkpoints" / "step_3"
    cases = [("decode", "--checkpoint", trained_run, "--data", dataset, "--out", trained_run, "training run"),
             ("freeze", "--state", "zH", "--checkpoint", trained_run, "--data", dataset, "--out", ck / "x", "checkpoint"),
             ("attention", "--checkpoint", trained_run, "--data", dataset, "--out", dataset / "att", "dataset"),
             ("eval", trained_run, "--data", dataset, "--out", trained_run / "eval.csv", "training run"),
             ("report", "--checkpoint", trained_run, "--data", dataset, "--out", dataset / "test" / "r.html", "dataset")]  # fmt: skip
    for *args, kind in cases:
        assert_clean_error(invoke(*args), "--out", f"a {kind} directory")
    assert snapshot(trained_run, dataset) == before
    shipped = REPO / "checkpoints" / "sudoku6_Lx_H"
    assert_clean_error(invoke("decode", "--task", "sudoku", "--out", shipped), "is a checkpoint directory")


def test_unusable_output_paths_fail_before_any_work(tmp_path):
    """A dangling symlink, a symlink loop, a name that is not UTF-8 or too long: one line, before
    the analysis runs (they failed after it, in the last-resort handler; issue 22.8)."""
    import os

    from tests.helpers import assert_clean_error

    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "dangling.html").symlink_to(tmp_path / "nowhere.html")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    cases = [(tmp_path / "dangling", "which does not exist"), (tmp_path / "loop" / "x", "cannot be resolved"),
             (tmp_path / ("x" * 300), "longer than 255 bytes"),
             (tmp_path / os.fsdecode(b"caf\xe9"), "not valid UTF-8")]  # fmt: skip
    for out, needle in cases:
        assert_clean_error(invoke("decode", "--task", "sudoku", "--n-puzzles", "2", "--out", out), "--out", needle)
        assert_clean_error(invoke("report", "--task", "sudoku", "--n-puzzles", "2", "--out", f"{out}.html"), "--out", needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dangling", "dangling.html", "loop"]


def test_a_card_that_describes_another_model_is_refused(tmp_path):
    """A card whose variant disagrees with the signed config was shown beside the weights (issue 22.7)."""
    from tests.helpers import assert_clean_error

    dest = tmp_path / "ck"
    shutil.copytree(REPO / "checkpoints" / "sudoku6_Lx_H", dest)
    card = json.loads((dest / "card.json").read_text())
    (dest / "card.json").write_text(json.dumps({**card, "variant": "Lx_Hx"}))
    assert_clean_error(invoke("decode", "--checkpoint", dest, "--n-puzzles", "2", "--out", tmp_path / "d"),
                       "card.json: variant 'Lx_Hx', but the weights' signed config says 'Lx_H'")  # fmt: skip
    assert not (tmp_path / "d").exists()


def test_a_wrongly_typed_card_fails_before_any_work(tmp_path, dataset, trained_run):
    """report and train --init-from failed after the whole computation on a card field of the wrong type (issue 22.8)."""
    from tests.helpers import TRAIN, assert_clean_error

    dest = tmp_path / "ck"
    shutil.copytree(REPO / "checkpoints" / "sudoku6_Lx_H", dest)
    card = json.loads((dest / "card.json").read_text())
    (dest / "card.json").write_text(json.dumps({**card, "final_eval": {**card["final_eval"], "exact_accuracy": "high"}}))
    needle = "field 'final_eval.exact_accuracy' is str 'high'; expected a number"
    assert_clean_error(invoke("report", "--checkpoint", dest, "--data", REPO / "checkpoints" / "data" / "sudoku6",
                              "--n-puzzles", "2", "--out", tmp_path / "r.html"), needle)  # fmt: skip
    warm = tmp_path / "warm"
    shutil.copytree(trained_run, warm)
    card = json.loads((warm / "card.json").read_text())
    (warm / "card.json").write_text(json.dumps({**card, "steps": "many"}))
    assert_clean_error(invoke("train", "--data", dataset, "--out", tmp_path / "run", *TRAIN, "--init-from", warm), "field 'steps'")
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "run").exists()


def test_a_project_directory_is_not_mistaken_for_an_input(tmp_path, monkeypatch):
    """Only airinterp's own run, checkpoint and dataset layouts are protected: a project with its own
    config.json, checkpoints/ and metrics.jsonl may hold analysis outputs."""
    project = tmp_path / "project"
    (project / "checkpoints").mkdir(parents=True)
    (project / "config.json").write_text('{"lr": 0.1}')
    (project / "metrics.jsonl").write_text("")
    (project / "dataset.json").write_text("{}")
    monkeypatch.chdir(project)
    res = invoke("decode", "--task", "sudoku", "--n-puzzles", "2", "--n-act", "1", "--out", "out/dec")
    assert res.exit_code == 0, res.output
    assert (project / "out" / "dec" / "tokens.parquet").is_file()


def test_a_card_naming_the_variant_by_its_reference_name_is_this_model(tmp_path):
    """The trainer keeps --variant as given (air_1net_Lx_H); the config normalises it: the same model."""
    from airinterp.checkpoints import Checkpoint

    dest = tmp_path / "ck"
    shutil.copytree(REPO / "checkpoints" / "sudoku6_Lx_H", dest)
    card = json.loads((dest / "card.json").read_text())
    (dest / "card.json").write_text(json.dumps({**card, "variant": "air_1net_Lx_H"}))
    assert Checkpoint(dest).load().config.variant == "Lx_H"
