"""Training: optimizer and loss formulas, learning on a tiny task, resume after SIGKILL, eval CLI."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import airinterp
from airinterp.cli import app
from airinterp.train.losses import stablemax, stablemax_cross_entropy
from airinterp.train.optim import AdamATan2, learning_rate, sign_sgd_rows_

runner = CliRunner()


def test_adam_atan2_matches_its_formula():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = AdamATan2([p], lr=0.1, betas=(0.9, 0.95), weight_decay=0.5, a=1.27, b=1.0)
    grads = [torch.tensor([0.5, -1.0]), torch.tensor([-0.25, 2.0])]
    want = [1.0, -2.0]
    m, v = [0.0, 0.0], [0.0, 0.0]
    for t, g in enumerate(grads, start=1):
        p.grad = g.clone()
        opt.step()
        for i in range(2):
            want[i] *= 1 - 0.1 * 0.5
            m[i] = 0.9 * m[i] + 0.1 * g[i].item()
            v[i] = 0.95 * v[i] + 0.05 * g[i].item() ** 2
            m_hat, v_hat = m[i] / (1 - 0.9**t), v[i] / (1 - 0.95**t)
            want[i] -= 0.1 * 1.27 * math.atan2(m_hat, math.sqrt(v_hat))
        assert torch.allclose(p.detach(), torch.tensor(want), atol=1e-6), (t, p, want)
    # first step: atan2(g, |g|) = +-pi/4 whatever the gradient's size
    q = torch.nn.Parameter(torch.zeros(1))
    q.grad = torch.tensor([1e-8])
    AdamATan2([q], lr=1.0, a=1.0).step()
    assert q.item() == pytest.approx(-math.pi / 4)


def test_stablemax_matches_its_definition():
    x = torch.tensor([[-2.0, 0.0, 3.0]])
    s = [1 / (1 + 2), 1.0, 4.0]
    assert torch.allclose(stablemax(x), torch.tensor([s]))
    loss = stablemax_cross_entropy(x.unsqueeze(0), torch.tensor([[2]]))
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(-math.log(4.0 / sum(s)))
    ignored = stablemax_cross_entropy(x.unsqueeze(0), torch.tensor([[-100]]))
    assert ignored.item() == 0


def test_schedule_and_sign_sgd():
    assert learning_rate(1, 1e-4, 2000, 26041) == pytest.approx(5e-8)
    assert learning_rate(2000, 1e-4, 2000, 26041) == learning_rate(26040, 1e-4, 2000, 26041) == pytest.approx(1e-4)
    assert learning_rate(26041, 1.0, 0, 26041, min_ratio=0.0) == pytest.approx(0.0)
    table = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    sign_sgd_rows_(table, torch.tensor([0, 0, 2]), torch.tensor([[1.0, -3.0], [1.0, 1.0], [0.0, -1.0]]), lr=0.5, weight_decay=0.1)
    assert torch.allclose(table, torch.tensor([[0.45, 1.45], [2.0, 2.0], [2.85, 3.35]]))


@pytest.fixture(scope="module")
def sudoku4(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "s4"
    res = runner.invoke(app, ["data", "sudoku", "--size", "4x4", "--train", "24", "--aug", "30", "--test", "12", "--seed", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def _train(data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "airinterp.cli", "train", "--data", str(data), "--out", str(out), "--preset", "tiny",
            "--eval-limit", "12", "--epochs", "1000", *extra]  # fmt: skip


def test_a_step_where_no_row_halted_logs_no_accuracy():
    """Per-row metrics average over the rows that halted at the step; with none they are absent
    (they were logged as accuracy 0 over "1 halted row", read as a collapse)."""
    from types import SimpleNamespace

    from airinterp.train.loop import Trainer

    me = SimpleNamespace(run=SimpleNamespace(global_batch_size=4), world=1)
    t = torch.tensor
    none = Trainer._metrics(me, {"lm_loss": t(2.0), "count": t(0.0), "accuracy": t(0.0), "steps": t(0.0)}, 1e-3)
    assert none == {"lm_loss": 0.5, "halted_rows": 0.0, "lr": 1e-3}
    two = Trainer._metrics(me, {"lm_loss": t(2.0), "count": t(2.0), "accuracy": t(1.5), "steps": t(8.0)}, 1e-3)
    assert two == {"lm_loss": 0.5, "accuracy": 0.75, "steps": 4.0, "halted_rows": 2.0, "lr": 1e-3}


def test_tiny_model_learns(sudoku4, tmp_path):
    res = runner.invoke(app, ["train", "--data", str(sudoku4), "--out", str(tmp_path / "run"), "--preset", "tiny",
                              "--max-steps", "200", "--epochs", "1000", "--eval-limit", "12", "--task", "sudoku"])  # fmt: skip
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert train[-1]["lm_loss"] < 0.7 * train[0]["lm_loss"]
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert card["steps"] == 200 and card["final_eval"]["n"] == 12
    assert card["final_eval"]["nongiven_accuracy"] > 0.33  # chance is 1/4 on a 4x4 Sudoku (0.42 measured)
    # `airinterp eval` reproduces the card
    res = runner.invoke(app, ["eval", str(tmp_path / "run" / "model.safetensors"), "--data", str(sudoku4), "--first", "12",
                              "--out", str(tmp_path / "per_puzzle.csv")])  # fmt: skip
    assert res.exit_code == 0, res.output
    last = res.output.strip().splitlines()[-1]
    ev = card["final_eval"]
    assert last == f"exact_accuracy={ev['exact_accuracy']:.6f} token_accuracy={ev['token_accuracy']:.6f} n=12"
    assert len((tmp_path / "per_puzzle.csv").read_text().splitlines()) == 13


def test_resume_after_sigkill_equals_uninterrupted(sudoku4, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    args = ("--max-steps", "40", "--checkpoint-every", "5")
    subprocess.run(_train(sudoku4, tmp_path / "whole", *args), env=env, check=True, capture_output=True)
    proc = subprocess.Popen(_train(sudoku4, tmp_path / "killed", *args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = tmp_path / "killed" / "latest"
    deadline = time.time() + 120
    while time.time() < deadline and not (latest.is_file() and latest.read_text().strip() in ("step_10", "step_15")):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert latest.read_text().strip() != "step_40", "the run finished before it could be killed"
    subprocess.run(_train(sudoku4, tmp_path / "killed", *args, "--resume"), env=env, check=True, capture_output=True)
    a = airinterp.load(tmp_path / "whole" / "model.safetensors").state_dict()
    b = airinterp.load(tmp_path / "killed" / "model.safetensors").state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    state = torch.load(tmp_path / "killed" / "checkpoints" / "step_40" / "state.pt", weights_only=True)
    assert state["position"][0] == 40


def test_train_refuses_bad_setups(sudoku4, tmp_path):
    res = runner.invoke(app, ["train", "--data", str(sudoku4), "--out", str(tmp_path), "--preset", "huge"])
    assert res.exit_code == 2 and "unknown preset" in res.output
    res = runner.invoke(app, ["train", "--data", str(sudoku4), "--out", str(tmp_path), "--preset", "tiny", "--task", "maze"])
    assert res.exit_code == 2 and "holds sudoku data" in res.output
    res = runner.invoke(app, ["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path), "--preset", "tiny"])
    assert res.exit_code == 2


@pytest.mark.slow
def test_ddp_two_cpu_ranks_match_one_process(sudoku4, tmp_path):
    """torchrun with 2 gloo ranks on CPU: DistributedDataParallel gives the single-process result."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "airinterp.cli"]
    subprocess.run([*torchrun, *_train(sudoku4, tmp_path / "ddp", "--max-steps", "6")[3:]], env=env, check=True, capture_output=True)
    subprocess.run(_train(sudoku4, tmp_path / "one", "--max-steps", "6"), env=env, check=True, capture_output=True)
    a = airinterp.load(tmp_path / "ddp" / "model.safetensors").state_dict()
    b = airinterp.load(tmp_path / "one" / "model.safetensors").state_dict()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5


def test_architecture_knobs_threads_and_a_checkpoint_series_are_recorded(sudoku4, tmp_path):
    """train takes the architecture it lacked (ACT steps, cycles, layers, heads, expansion), sets its
    own thread count, keeps the --checkpoint-at series, and says all of it in the card."""
    out = tmp_path / "run"
    args = ("--max-steps", "6", "--act-steps", "3", "--h-cycles", "1", "--l-cycles", "2", "--layers", "1", "--heads", "4",
            "--expansion", "2", "--threads", "1", "--checkpoint-at", "2,5")  # fmt: skip
    subprocess.run(_train(sudoku4, out, *args), env={**os.environ, "OMP_WAIT_POLICY": ""} | {"OMP_NUM_THREADS": "2"},
                   check=True, capture_output=True)  # fmt: skip
    card = json.loads((out / "card.json").read_text())
    c = card["config"]
    assert (c["halt_max_steps"], c["H_cycles"], c["L_cycles"], c["L_layers"], c["num_heads"], c["expansion"]) == (3, 1, 2, 1, 4, 2.0)
    assert card["threads"] == 1 and card["run"]["checkpoint_at"] == [2, 5]
    assert {"step_2", "step_5", "step_6"} <= {p.name for p in (out / "checkpoints").iterdir()}
    model = airinterp.load(out / "checkpoints" / "step_2" / "model.safetensors")
    assert len(model.blocks) == 1 and model.config.n_updates == 3
    res = runner.invoke(app, ["train", "--data", str(sudoku4), "--out", str(tmp_path / "x"), "--preset", "tiny",
                              "--checkpoint-at", "5,a"])  # fmt: skip
    assert res.exit_code == 2 and "--checkpoint-at '5,a'" in res.output


def test_compiled_and_eager_training_steps_agree(sudoku4, tmp_path):
    """--compile (the ACT step through torch.compile) trains the same model as eager, to float32 rounding.
    (In a subprocess: the suite's runtime type checks do not trace under torch.compile.)"""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, extra in (("eager", ()), ("compiled", ("--compile",))):
        subprocess.run(_train(sudoku4, tmp_path / name, "--max-steps", "3", *extra), env=env, check=True, capture_output=True)
    a = airinterp.load(tmp_path / "eager" / "model.safetensors").state_dict()
    b = airinterp.load(tmp_path / "compiled" / "model.safetensors").state_dict()
    assert json.loads((tmp_path / "compiled" / "card.json").read_text())["run"]["compile"] is True
    for k, v in a.items():
        torch.testing.assert_close(b[k], v, rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.parametrize(
    ("family", "extra"),
    [("hrm", ("--h-layers", "1")), ("trm", ("--h-cycles", "2", "--l-cycles", "2", "--prefix-len", "3")),
     ("trm", ("--mlp-t", "--pos-encodings", "none")), ("trm_singlez", ("--h-cycles", "2", "--l-cycles", "2"))],
)
def test_the_siblings_train(sudoku4, tmp_path, family, extra):
    """HRM (an H stack of its own) and TRM (its halting rule: q_halt > 0, no target-Q pass, so no
    q_continue loss) train with the same loop; the card says which."""
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "--data", str(sudoku4), "--out", str(out), "--preset", "tiny", "--eval-limit", "4",
                              "--max-steps", "4", "--family", family, *extra])  # fmt: skip
    assert res.exit_code == 0, res.output
    card = json.loads((out / "card.json").read_text())
    assert card["config"]["family"] == family
    train = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"train"' in line]
    assert train and all(("q_continue_loss" in r) == (family not in ("trm", "trm_singlez")) for r in train)
    model = airinterp.load(out)
    assert (model.h_blocks is not model.blocks) if family == "hrm" else not hasattr(model, "h_blocks")


def test_ema_weights_are_saved_evaluated_and_resumed(sudoku4, tmp_path):
    """TRM's ema: checkpoints hold the EMA of the parameters (buffers live), the live parameters travel
    in state.pt, and a resumed run ends bitwise where an uninterrupted one does."""
    from airinterp.train.config import TrainRun
    from airinterp.train.loop import Trainer

    def run(out, max_steps):
        t = Trainer(TrainRun.from_preset("tiny", data=sudoku4, out=out, epochs=1000, eval_limit=4, ema_rate=0.5,
                                         max_steps=max_steps, checkpoint_every=3), log=lambda _: None)  # fmt: skip
        return t

    whole = run(tmp_path / "whole", 6)
    whole.fit()
    saved = airinterp.load(tmp_path / "whole" / "model.safetensors").state_dict()
    live = dict(whole.model.named_parameters())
    for (name, _p), e in zip(whole.model.named_parameters(), whole.ema, strict=True):
        assert torch.equal(saved[name], e) and not torch.equal(saved[name], live[name].detach()), name
    assert json.loads((tmp_path / "whole" / "card.json").read_text())["weights"].startswith("EMA")
    part = run(tmp_path / "part", 3)
    part.fit()
    again = run(tmp_path / "part", 6)
    assert again.resume()
    again.fit()
    for (name, a), b in zip(whole.model.named_parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b), name
    assert all(torch.equal(a, b) for a, b in zip(whole.ema, again.ema, strict=True))
