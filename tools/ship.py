#!/usr/bin/env python
"""Ship a finished training run into the repository: the model, or a series along its training.

    python tools/ship.py model RUN checkpoints/sudoku6_Lx_H --eval-data checkpoints/data/sudoku6
    python tools/ship.py series RUN checkpoints/series/sudoku6_Lx_H --eval-data checkpoints/data/sudoku6 --steps 50,200,800
    python tools/ship.py average RUN checkpoints/sudoku6_Lx_H --eval-data checkpoints/data/sudoku6 --steps 6000:7750:250

``model`` copies what the trainer wrote at the end of RUN (``model.safetensors``, ``card.json``,
``metrics.jsonl``) and makes the card's paths the repository's: ``data`` becomes the command that
rebuilds the run's dataset (from the dataset's ``airinterp_build.json``), ``eval_data`` names the
shipped test split, ``run.out`` the destination. The weights are copied byte for byte.

``average`` ships the uniform average of the run's checkpoints at ``--steps`` (``A:B:STEP``, both
ends included, or a list): stochastic weight averaging after the fact, for a run whose single
checkpoints swing (a constant learning rate). The card says which steps were averaged, the budget
up to the last of them (steps, wall time from its ``state.pt``), and the accuracy of the averaged
weights on the whole test split (``airinterp eval`` reproduces it).

``series`` writes the kept checkpoints ``RUN/checkpoints/step_N`` (default: the run's
``--checkpoint-at`` steps that exist, plus its last checkpoint) as ``DEST/step_N/model.safetensors``
in bfloat16 (half the size; the analyses run in float32 on the rounded weights), each with a small
``card.json`` (the step, the run, ``eval_data``) and ``DEST/series.json`` (the run's config and
recipe). ``airinterp sweep --series DEST`` then analyses it.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from airinterp.analysis.sweep import series_points
from airinterp.checkpoints import load, save
from airinterp.io import atomic_write_text


def recipe(data: Path, task: str) -> str | None:
    """The ``airinterp data ...`` command that rebuilt ``data`` (None if not ours)."""
    try:
        c = json.loads((data / "airinterp_build.json").read_text())["config"]
    except (OSError, ValueError, KeyError):
        return None
    if task == "sudoku":
        return f"airinterp data sudoku --size {c['size']} --train {c['train']} --aug {c['aug']} --test {c['test']} --seed {c['seed']}"
    if task == "maze":
        return f"airinterp data maze --size {c['size']} --train {c['train']} --test {c['test']} --seed {c['seed']}"
    return None


def run_data(run: Path, given: str) -> Path:
    """The run's dataset as the trainer was given it: absolute, or relative to where it was started
    (tried: the working directory, then the directory holding the runs' directory)."""
    p = Path(given)
    for base in (Path.cwd(), run.resolve().parent.parent):
        if (base / p).is_dir():
            return base / p
    sys.exit(f"error: {run}: its data {given} is not here; run from where the training was started")


def ship_model(run: Path, dest: Path, eval_data: str) -> None:
    card = json.loads((run / "card.json").read_text())
    data = run_data(run, card["run"]["data"])
    card["data"] = card["run"]["data"] = recipe(data, card["config"]["task"]) or str(data)
    card["run"]["out"] = str(dest)
    card["eval_data"] = eval_data
    dest.mkdir(parents=True, exist_ok=True)
    for f in ("model.safetensors", "metrics.jsonl"):
        shutil.copyfile(run / f, dest / f)
    atomic_write_text(dest / "card.json", json.dumps(card, indent=2, default=str) + "\n")
    print(f"{dest}: step {card['steps']}, exact {card['final_eval'].get('exact_accuracy')} on {card['final_eval'].get('n')}")


def parse_steps(text: str) -> list[int]:
    if ":" in text:
        a, b, step = (int(x) for x in text.split(":"))
        return list(range(a, b + 1, step))
    return [int(x) for x in text.split(",")]


def ship_average(run: Path, dest: Path, eval_data: str, steps: list[int], bf16: bool = False) -> None:
    from airinterp.checkpoints import REPO
    from airinterp.tasks.dataset import PuzzleDataset
    from airinterp.train.evaluate import evaluate

    points = series_points(run, steps)
    models = [load(p.checkpoint) for p in points]
    model = models[-1]
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.stack([m.state_dict()[name] for m in models]).mean(0))
    last = points[-1].checkpoint
    state = torch.load(last / "state.pt", weights_only=True)
    config = json.loads((run / "config.json").read_text())
    data = run_data(run, config["data"])
    config["data"] = recipe(data, model.config.task) or str(data)
    config["out"] = str(dest)
    dest.mkdir(parents=True, exist_ok=True)
    save(model, dest / "model.safetensors", dtype=torch.bfloat16 if bf16 else None,
         source=f"{run.name}: average of steps {points[0].step}..{points[-1].step}")  # fmt: skip
    # the card's accuracy is that of the weights as stored (bf16: rounded), as airinterp eval reloads them
    _, final = evaluate(load(dest / "model.safetensors"), PuzzleDataset(REPO / eval_data, "test"), "test")
    card = {
        "airinterp_version": __import__("airinterp").__version__, "preset": config["preset"], "variant": config["variant"],
        "data": config["data"], "data_build": json.loads((data / "airinterp_build.json").read_text())["config"],
        "data_sha256": state.get("data_sha256"), "steps": points[-1].step, "wall_time_s": round(float(state["wall_s"]), 1),
        "device": config.get("device", "cpu") + (f" ({config['threads']} threads)" if config.get("threads") else ""),
        "threads": config.get("threads"),
        "weights": (f"uniform average of the checkpoints at steps {', '.join(str(p.step) for p in points)} "
                    "(stochastic weight averaging after the fact)" if len(points) > 1 else f"the run's checkpoint at step {points[0].step}")
                   + ("; stored in bfloat16 (the accuracy is the stored weights')" if bf16 else ""),
        "averaged_steps": [p.step for p in points], "final_eval": final, "config": model.config.model_dump(),
        "run": config, "eval_data": eval_data,
    }  # fmt: skip
    shutil.copyfile(run / "metrics.jsonl", dest / "metrics.jsonl")
    atomic_write_text(dest / "card.json", json.dumps(card, indent=2, default=str) + "\n")
    print(f"{dest}: average of {len(points)} checkpoints, exact {final['exact_accuracy']:.4f} on {final['n']}")


def ship_series(run: Path, dest: Path, eval_data: str, steps: list[int] | None) -> None:
    config = json.loads((run / "config.json").read_text())
    data = run_data(run, config["data"])
    points = series_points(run, steps)
    config["data"] = recipe(data, load(points[0].checkpoint).config.task) or str(data)
    config["out"] = str(dest)
    r, d = run.resolve(), dest.resolve()
    if d == r or r in d.parents or d in r.parents:
        sys.exit(f"error: {dest}: overlaps the run {run}; ship the series elsewhere")
    if dest.exists() and any(dest.iterdir()) and not (dest / "series.json").is_file():
        sys.exit(f"error: {dest}: exists and is not a shipped series (no series.json); refusing to replace it")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    tests = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("split") == "test":
            tests[r["step"]] = {k: r[k] for k in ("exact_accuracy", "token_accuracy", "n") if k in r}
    for p in points:
        d = dest / f"step_{p.step}"
        d.mkdir()
        save(load(p.checkpoint), d / "model.safetensors", dtype=torch.bfloat16, source=f"{run.name} step {p.step} (series, bf16)")
        card = {"series": dest.name, "step": p.step, "variant": config["variant"], "preset": config["preset"],
                "weights": "bfloat16 copy of the training checkpoint", "data": config["data"], "eval_data": eval_data}  # fmt: skip
        atomic_write_text(d / "card.json", json.dumps(card, indent=2) + "\n")
    series = {"run": config, "steps": [p.step for p in points], "training_test_evaluations": tests, "eval_data": eval_data}
    atomic_write_text(dest / "series.json", json.dumps(series, indent=2) + "\n")
    size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) / 2**20
    print(f"{dest}: steps {','.join(str(p.step) for p in points)} ({size:.1f} MiB)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["model", "series", "average"])
    p.add_argument("run", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--eval-data", required=True, help="the shipped test split, relative to the repository")
    p.add_argument("--steps", help="series, average: these steps (comma-separated, or A:B:STEP)")
    p.add_argument("--bf16", action="store_true", help="average: store the weights in bfloat16 (half the size)")
    a = p.parse_args()
    if not (a.run / "config.json").is_file():
        sys.exit(f"error: {a.run}: not a training run (no config.json)")
    if a.what == "model":
        if not (a.run / "card.json").is_file():
            sys.exit(f"error: {a.run}: the run has not finished (no card.json); resume it with --max-steps N to finish")
        ship_model(a.run, a.dest, a.eval_data)
    elif a.what == "average":
        if not a.steps:
            sys.exit("error: average needs --steps")
        ship_average(a.run, a.dest, a.eval_data, parse_steps(a.steps), a.bf16)
    else:
        ship_series(a.run, a.dest, a.eval_data, parse_steps(a.steps) if a.steps else None)


if __name__ == "__main__":
    main()
