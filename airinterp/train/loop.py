"""The reference training loop (spec 2.1-2.5), resumable and distributable.

One optimizer step = one ACT step for every row of the global batch: halted rows load the next
puzzle and reset their states, the others continue their puzzle (deep supervision with carried
state); only the last L- and H-update record gradients; the loss is computed on every row.
Randomness: the data stream is the reference's (Philox keyed by seed + iteration); exploration
draws come from one torch.Generator seeded ``seed + rank``, saved with every checkpoint, so a
killed run resumed from a checkpoint reaches the same weights as an uninterrupted one.
"""

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from airinterp._version import __version__
from airinterp.checkpoints import Checkpoint, CheckpointError, torch_load_weights_only
from airinterp.checkpoints import load as load_model
from airinterp.checkpoints import save as save_model
from airinterp.errors import InputError, resolve_device
from airinterp.io import atomic_write_text, staging_dir
from airinterp.model.air import Carry, HookedAIR
from airinterp.model.config import AIRConfig
from airinterp.tasks.dataset import IGNORE_LABEL_ID, PuzzleDataset
from airinterp.train.config import TrainRun
from airinterp.train.evaluate import evaluate
from airinterp.train.losses import act_losses
from airinterp.train.optim import AdamATan2, learning_rate, sign_sgd_rows_

CARRY_FIELDS = ("z_H", "z_L", "steps", "halted", "inputs", "labels", "ids")


@dataclass(frozen=True)
class TrainCarry:
    """What the reference's ACT wrapper carries between training calls: the states, each row's
    ACT steps so far and whether it halted (then the next call starts it on a new puzzle), and
    the puzzle each row works on. ``state.pt`` stores it as a dict of :data:`CARRY_FIELDS`."""

    z_H: Tensor  # [batch, pos, d_model]
    z_L: Tensor
    steps: Tensor  # [batch] int64
    halted: Tensor  # [batch] bool
    inputs: Tensor  # [batch, cell] long
    labels: Tensor
    ids: Tensor  # [batch] long

    def as_dict(self) -> dict[str, Tensor]:
        return {k: getattr(self, k) for k in CARRY_FIELDS}

    @classmethod
    def from_dict(cls, d: dict[str, Tensor]) -> "TrainCarry":
        return cls(**{k: d[k] for k in CARRY_FIELDS})

    def to(self, device: "torch.device | str") -> "TrainCarry":
        return TrainCarry(**{k: v.to(device) for k, v in self.as_dict().items()})
STATE_KEYS = ("position", "optimizer", "generator", "carry", "wall_s", "run")
#: settings a resumed run may change: they do not alter the trajectory (``data`` may move, its
#: content is checked by fingerprint)
FREE_SETTINGS = ("max_steps", "max_minutes", "out", "data", "eval_limit", "log_every", "checkpoint_every", "threads", "checkpoint_at")


def read_run(out: "str | Path") -> TrainRun | None:
    """The settings of the run in ``out`` (its last checkpoint's, else its config.json); None if
    ``out`` holds nothing; an InputError if it holds files but no airinterp run."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"out {out}: is a file; expected a run directory")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    config = out / "config.json"
    if not config.is_file():
        raise InputError(f"out {out}: holds files but no airinterp run (no config.json); pick another directory")
    try:
        return TrainRun.model_validate_json(config.read_text())
    except ValueError as err:
        from airinterp.errors import one_line

        raise InputError(one_line(err, f"{config}: not an airinterp run config: ")) from None


def _checkpoint_dir(out: Path) -> Path | None:
    """The checkpoint ``latest`` names; if a save was killed between its renames, the copy it
    set aside (``step_N.old``) is the same checkpoint."""
    latest = out / "latest"
    if not latest.is_file():
        return None
    tag = latest.read_text().strip()
    if not tag or "/" in tag or tag.startswith("."):
        raise CheckpointError(f"{latest}: names {tag!r}, not a checkpoint tag")
    for cand in (out / "checkpoints" / tag, out / "checkpoints" / f"{tag}.old"):
        if (cand / "state.pt").is_file() and (cand / "model.safetensors").is_file():
            return cand
    raise CheckpointError(f"{latest}: names {tag}, but {out / 'checkpoints' / tag} holds no complete checkpoint")


def read_state(path: Path) -> dict:
    """A checkpoint's state.pt, loaded weights-only and checked for the keys a resume needs."""
    state = torch_load_weights_only(path, "training state")
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        have = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: not an airinterp training state (expected keys {list(STATE_KEYS)}, got {have})")
    return state


class ACTTrainStep(nn.Module):
    """One training call of the reference's ACT wrapper plus its loss head (a module, so that
    DistributedDataParallel can wrap it)."""

    def __init__(self, model: HookedAIR) -> None:
        super().__init__()
        self.model = model

    def forward(self, carry: TrainCarry, new: dict[str, Tensor], explore: tuple[Tensor, Tensor], emb_grad: bool):
        m = self.model
        c = m.config
        reset = carry.halted
        cur = {k: torch.where(reset.view(-1, *([1] * (new[k].ndim - 1))), new[k], getattr(carry, k)) for k in ("inputs", "labels", "ids")}
        init = m.initial_carry(reset.shape[0])
        r3 = reset.view(-1, 1, 1)
        z_H = torch.where(r3, init.z_H, carry.z_H)
        z_L = torch.where(r3, init.z_L, carry.z_L)
        steps = torch.where(reset, 0, carry.steps)
        prefix_rows = None
        if c.puzzle_emb_ndim > 0 and emb_grad:
            prefix_rows = m.puzzle_emb[cur["ids"]].clone().requires_grad_(True)
        with record_function("train.forward"):
            x, g = m.encode(cur["inputs"], cur["ids"], None, prefix_rows)
            out = m.step(Carry(z_H=z_H, z_L=z_L), x, g)
        new_carry = Carry(z_H=out.carry.z_H.detach(), z_L=out.carry.z_L.detach())
        with torch.no_grad():
            steps = steps + 1
            is_last = steps >= c.halt_max_steps
            halted = is_last
            target = None
            if c.halt_max_steps > 1:
                trm = c.trm_like  # TRM's no_ACT_continue: halt on q_halt > 0, no continue target
                halted = halted | ((out.q_halt > 0) if trm else (out.q_halt > out.q_continue))
                u, draw = explore
                min_steps = (u < c.halt_exploration_prob) * draw
                halted = halted & (steps >= min_steps)
                if not trm:
                    with record_function("train.q_target"):  # the reference's extra ACT step for the Q target
                        nxt = m.step(new_carry, x.detach(), None if g is None else g.detach())
                    target = torch.sigmoid(torch.where(is_last, nxt.q_halt, torch.maximum(nxt.q_halt, nxt.q_continue)))
        with record_function("train.loss"):
            loss, parts, exact = act_losses(out.logits, cur["labels"], out.q_halt, out.q_continue, target)
        with torch.no_grad():
            labels = cur["labels"]
            mask = labels != IGNORE_LABEL_ID
            counts = mask.sum(-1)
            valid = halted & (counts > 0)
            correct = (mask & (out.logits.argmax(-1) == labels)).sum(-1) / counts.clamp_min(1)
            stats = {
                "count": valid.sum().float(),
                "accuracy": torch.where(valid, correct, 0).sum().float(),
                "exact_accuracy": (valid & exact).sum().float(),
                "q_halt_accuracy": (valid & ((out.q_halt >= 0) == exact)).sum().float(),
                "steps": torch.where(valid, steps, 0).sum().float(),
            }
        new_state = TrainCarry(z_H=new_carry.z_H, z_L=new_carry.z_L, steps=steps, halted=halted, **cur)
        return loss, {k: v.detach() for k, v in parts.items()}, stats, new_state, prefix_rows


@dataclass
class Position:
    step: int = 0  # optimizer steps done
    iteration: int = 1  # current iteration of the data stream (1-based, as the reference)
    batch: int = 0  # batches of this iteration already consumed


class Trainer:
    def __init__(self, run: TrainRun, log: Callable[[str], None] = print) -> None:
        self.run = run
        self.log = log
        if run.threads is not None:  # (OpenMP's wait policy is set by `import airinterp` before torch loads: PASSIVE)
            torch.set_num_threads(run.threads)
        self.rank, self.world = 0, 1
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if run.device.startswith("cuda") else "gloo")
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = resolve_device(run.device if not run.device.startswith("cuda") or self.world == 1
                                     else f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}", "device")  # fmt: skip
        self.train_set = PuzzleDataset(run.data, "train")
        # opened (and so checked) now, not at the first evaluation
        self.test_set = PuzzleDataset(run.data, "test") if (Path(run.data) / "test" / "dataset.json").is_file() else None
        meta = self.train_set.metadata
        draws = self.train_set.n_groups * run.eval_interval
        if draws < run.global_batch_size:
            raise InputError(
                f"global_batch_size {run.global_batch_size} is larger than one iteration of {run.data}: "
                f"{self.train_set.n_groups} puzzle groups x eval_interval {run.eval_interval} = {draws} draws; "
                "lower global_batch_size or raise eval_interval"
            )
        if run.global_batch_size % self.world:
            raise InputError(f"global_batch_size {run.global_batch_size} is not a multiple of the {self.world} ranks")
        self.config = AIRConfig(
            variant=run.variant, vocab_size=meta["vocab_size"], seq_len=meta["seq_len"],
            num_puzzle_identifiers=meta.get("num_puzzle_identifiers", 1), puzzle_emb_ndim=run.hidden_size,
            hidden_size=run.hidden_size, num_heads=run.num_heads, L_layers=run.L_layers, H_cycles=run.H_cycles,
            L_cycles=run.L_cycles, halt_max_steps=run.halt_max_steps, halt_exploration_prob=run.halt_exploration_prob,
            forward_dtype=run.forward_dtype, expansion=run.expansion, family=run.family, H_layers=run.H_layers,
            mlp_t=run.mlp_t, puzzle_emb_len=run.puzzle_emb_len, pos_encodings=run.pos_encodings,
        )  # fmt: skip
        self.model = HookedAIR(self.config, seed=run.seed).to(self.device).train()
        self.init_card: dict = {}
        if run.init_from is not None:
            self._warm_start(Path(run.init_from))
        if run.compile:  # the whole ACT step (static shapes): 1.21x on one CPU thread at maze10 size, measured
            self.model.step = torch.compile(self.model.step, dynamic=False)  # type: ignore[method-assign]
        self.step_module: nn.Module = ACTTrainStep(self.model)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.step_module = DistributedDataParallel(self.step_module, device_ids=[self.device] if self.device.type == "cuda" else None)
        self.optimizer = AdamATan2(self.model.parameters(), lr=run.lr, betas=(run.beta1, run.beta2),
                                   weight_decay=run.weight_decay, a=run.atan2_scale)  # fmt: skip
        self.generator = torch.Generator(self.device).manual_seed(run.seed + self.rank)
        #: TRM's EMA of the parameters (buffers, the puzzle embedding included, stay live), as its EMAHelper
        self.ema: list[Tensor] | None = [p.detach().clone() for p in self.model.parameters()] if run.ema_rate else None
        groups = meta.get("total_groups", self.train_set.n_groups) * meta.get("mean_puzzle_examples", 1)
        self.total_steps = int(run.epochs * groups / run.global_batch_size)
        if self.total_steps < 1:
            raise InputError(f"epochs {run.epochs} of {groups} puzzle groups at batch {run.global_batch_size} make no optimizer step")
        self.stop_at = min(self.total_steps, run.max_steps or self.total_steps)
        self.pos = Position()
        self.carry: TrainCarry | None = None
        self.out = Path(run.out)
        if self.out.exists() and not self.out.is_dir():
            raise InputError(f"out {self.out}: is a file; expected a run directory")
        self._data_sha: str | None = None
        self.wall_before = 0.0  # training seconds of earlier sessions (resume)
        self._t0 = time.perf_counter()  # restarted by fit()

    # ---- checkpoints ---------------------------------------------------------------------------
    def _warm_start(self, path: Path) -> None:
        """The weights of ``path`` (a checkpoint of this run's architecture); the optimizer, the
        schedule's warmup and the data stream start afresh."""
        ck = Checkpoint(path)
        if not ck.file.exists():
            raise InputError(f"init_from {path}: no such checkpoint")
        model = load_model(path)
        mine, theirs = self.config.model_dump(), model.config.model_dump()
        differs = sorted(k for k in mine if k != "forward_dtype" and mine[k] != theirs[k])
        if differs:
            raise InputError(f"init_from {path}: its model differs from this run's in "
                             + ", ".join(f"{k} ({theirs[k]} vs {mine[k]})" for k in differs))  # fmt: skip
        with torch.no_grad():
            self.model.load_state_dict(model.state_dict())
        self.init_card = ck.card

    @contextlib.contextmanager
    def ema_weights(self):
        """The EMA parameters in the model for the block (saving, evaluating), the live ones after."""
        if self.ema is None:
            yield
            return
        params = list(self.model.parameters())
        live = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, e in zip(params, self.ema, strict=True):
                p.copy_(e)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, v in zip(params, live, strict=True):
                    p.copy_(v)

    def budgets(self, wall: float) -> list[dict]:
        """Every training budget behind the weights: the warm start's (from its card) and this one."""
        before = list(self.init_card.get("budgets") or ([{k: self.init_card.get(k) for k in ("steps", "wall_time_s", "device", "preset")}]
                                                        if self.init_card.get("steps") is not None else []))  # fmt: skip
        device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
        return before + [{"steps": self.pos.step, "wall_time_s": round(wall, 1), "device": device, "preset": self.run.preset}]

    def save(self, tag: str | None = None) -> Path:
        """Atomically write checkpoints/step_N/{model.safetensors, state.pt} and update ``latest``."""
        tag = tag or f"step_{self.pos.step}"
        final = self.out / "checkpoints" / tag
        # A tag saved twice (the final save at a --checkpoint-every step): the old copy is set
        # aside by a rename, not deleted, until the new one is in place; resume reads the aside
        # copy if a kill falls between the two renames (_checkpoint_dir).
        with staging_dir(final, aside=final.with_name(final.name + ".old")) as tmp:
            with self.ema_weights():  # with EMA (TRM), the checkpoint's weights are the EMA ones
                save_model(self.model, tmp / "model.safetensors", source=f"airinterp train, step {self.pos.step}")
            state = {
                "position": [self.pos.step, self.pos.iteration, self.pos.batch],
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
                "carry": None if self.carry is None else self.carry.to("cpu").as_dict(),
                "wall_s": self.wall_before + time.perf_counter() - self._t0,
                "run": self.run.model_dump_json(),
            }
            state["data_sha256"] = self.data_fingerprint
            if self.ema is not None:
                state["live"] = [p.detach().cpu() for p in self.model.parameters()]
                state["ema"] = [e.cpu() for e in self.ema]
            torch.save(state, tmp / "state.pt")
        atomic_write_text(self.out / "latest", tag + "\n")
        return final

    @property
    def data_fingerprint(self) -> str:
        if self._data_sha is None:
            self._data_sha = self.train_set.fingerprint()
        return self._data_sha

    def resume(self) -> bool:
        """Load the checkpoint named in ``latest``; False if there is none."""
        ckpt = _checkpoint_dir(self.out)
        if ckpt is None:
            return False
        state = read_state(ckpt / "state.pt")
        try:
            saved_run = TrainRun.model_validate_json(state["run"])
        except (ValueError, TypeError):
            raise CheckpointError(f"{ckpt / 'state.pt'}: its 'run' is not an airinterp run config") from None
        differs = {k for k, v in saved_run.model_dump().items() if k not in FREE_SETTINGS and v != getattr(self.run, k)}
        if differs:
            raise InputError(f"cannot resume {ckpt}: the run settings differ in {sorted(differs)}")
        saved_sha = state.get("data_sha256")
        if saved_sha is not None and saved_sha != self.data_fingerprint:
            raise InputError(
                f"cannot resume {ckpt}: data {self.run.data} is not the dataset this run trained on "
                f"(its train split's fingerprint differs; the run's was {saved_run.data})"
            )
        model = load_model(ckpt / "model.safetensors")
        if model.config != self.config:
            raise CheckpointError(f"{ckpt / 'model.safetensors'}: its config differs from this run's model")
        carry = state["carry"]
        if carry is not None:
            B = self.run.global_batch_size // self.world
            if not isinstance(carry, dict) or set(carry) != set(CARRY_FIELDS) or any(
                not isinstance(v, Tensor) or v.shape[:1] != (B,) for v in carry.values()
            ):
                raise CheckpointError(f"{ckpt / 'state.pt'}: its carry does not fit this run (fields {list(CARRY_FIELDS)}, batch {B})")
        try:
            pos = Position(*(int(v) for v in state["position"]))
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
            wall = float(state["wall_s"])
        except (TypeError, ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"{ckpt / 'state.pt'}: does not fit this run ({type(err).__name__}: {err})") from None
        self.model.load_state_dict(model.state_dict())
        if self.ema is not None:  # model.safetensors holds the EMA; the live parameters are in state.pt
            if "live" not in state or "ema" not in state:
                raise CheckpointError(f"{ckpt / 'state.pt'}: no EMA state, but this run keeps an EMA (ema_rate)")
            with torch.no_grad():
                for p, v in zip(self.model.parameters(), state["live"], strict=True):
                    p.copy_(v)
            self.ema = [e.to(self.device) for e in state["ema"]]
        self.pos = pos
        self.carry = None if carry is None else TrainCarry.from_dict(carry).to(self.device)
        self.wall_before = wall
        self.log(f"resumed from {ckpt} (step {self.pos.step})")
        return True

    # ---- the loop ------------------------------------------------------------------------------
    def _empty_carry(self, batch_size: int, like: dict[str, Tensor]) -> TrainCarry:
        c = self.config
        z = torch.zeros(batch_size, c.n_pos, c.hidden_size, dtype=self.model.dtype, device=self.device)
        return TrainCarry(z_H=z, z_L=z.clone(), steps=torch.zeros(batch_size, dtype=torch.int64, device=self.device),
                          halted=torch.ones(batch_size, dtype=torch.bool, device=self.device),
                          **{k: torch.zeros_like(v) for k, v in like.items()})  # fmt: skip

    def train_step(self, batch) -> dict[str, float]:
        run = self.run
        new = {
            "inputs": torch.from_numpy(batch.inputs).long().to(self.device),
            "labels": torch.from_numpy(batch.labels).long().to(self.device),
            "ids": torch.from_numpy(batch.puzzle_identifiers).long().to(self.device),
        }
        if self.carry is None:
            self.carry = self._empty_carry(new["inputs"].shape[0], new)
        n = new["inputs"].shape[0]
        u = torch.rand(n, generator=self.generator, device=self.device)
        draw = torch.randint(2, self.config.halt_max_steps + 1, (n,), generator=self.generator, device=self.device)
        emb_grad = run.puzzle_emb_lr > 0
        loss, parts, stats, self.carry, prefix_rows = self.step_module(self.carry, new, (u, draw), emb_grad)
        # the reference sums gradients over ranks of loss / global batch; DDP averages them, so each
        # rank divides by its local batch instead (the same gradient)
        with record_function("train.backward"):
            (loss / (run.global_batch_size // self.world)).backward()
        self.pos.step += 1
        lr = learning_rate(self.pos.step, run.lr, run.lr_warmup_steps, self.total_steps, run.lr_min_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with record_function("train.optimizer"):
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        if prefix_rows is not None and prefix_rows.grad is not None:
            ids, grads = self.carry.ids, prefix_rows.grad
            if self.world > 1:
                import torch.distributed as dist

                all_ids = [torch.empty_like(ids) for _ in range(self.world)]
                all_grads = [torch.empty_like(grads) for _ in range(self.world)]
                dist.all_gather(all_ids, ids)
                dist.all_gather(all_grads, grads)
                ids, grads = torch.cat(all_ids), torch.cat(all_grads)
            emb_lr = learning_rate(self.pos.step, run.puzzle_emb_lr, run.lr_warmup_steps, self.total_steps, run.lr_min_ratio)
            sign_sgd_rows_(self.model.puzzle_emb, ids, grads, emb_lr, run.puzzle_emb_weight_decay)
        if self.ema is not None:  # ema <- mu ema + (1 - mu) param
            with torch.no_grad():
                torch._foreach_lerp_(self.ema, [p.detach() for p in self.model.parameters()], 1.0 - float(self.run.ema_rate))
        with record_function("train.metrics"):
            return self._metrics({**parts, **stats}, lr)

    def _metrics(self, merged: dict[str, Tensor], lr: float) -> dict[str, float]:
        """The step's metrics as floats (sums over ranks; losses per global batch, the rest per halted row)."""
        run = self.run
        if self.world > 1:  # metrics of the whole global batch, as the reference reduces them
            import torch.distributed as dist

            keys = sorted(merged)
            stacked = torch.stack([merged[k].float() for k in keys])
            dist.all_reduce(stacked)
            merged = dict(zip(keys, stacked, strict=True))
        values = {k: float(v) for k, v in merged.items()}
        count = values.pop("count")
        out = {k: v / run.global_batch_size for k, v in values.items() if k.endswith("loss")}
        # the per-row metrics (accuracy, exact, q_halt, steps) are over the rows that halted at this
        # step; when none did they are absent, not 0 (a logged 0 read as a collapse)
        if count > 0:
            out.update({k: v / count for k, v in values.items() if not k.endswith("loss")})
        out["halted_rows"] = count
        out["lr"] = lr
        return out

    def _out_of_time(self) -> bool:
        limit = self.run.max_minutes
        return limit is not None and time.perf_counter() - self._t0 >= 60 * limit

    def evaluate(self) -> dict:
        if self.test_set is None:
            return {}
        with self.ema_weights():
            _, summary = evaluate(self.model, self.test_set, "test", self.run.eval_limit)
        return summary

    def fit(self, progress: Callable[[int, dict], None] | None = None) -> dict:
        run = self.run
        metrics_path = self.out / "metrics.jsonl"
        self.out.mkdir(parents=True, exist_ok=True)
        if self.pos.step == 0:
            (self.out / "config.json").write_text(run.model_dump_json(indent=2) + "\n")
            metrics_path.write_text("")
        self._t0 = time.perf_counter()
        last_eval: dict = {}
        window_t, window_steps = time.perf_counter(), 0
        with open(metrics_path, "a") as log_file:
            while self.pos.step < self.stop_at and not self._out_of_time():
                batches = self.train_set.train_batches(run.global_batch_size, run.seed, self.pos.iteration,
                                                       run.eval_interval, self.rank, self.world)  # fmt: skip
                produced = 0
                for i, batch in enumerate(batches):
                    produced += 1
                    if i < self.pos.batch:
                        continue  # consumed before a resume
                    values = self.train_step(batch)
                    self.pos.batch = i + 1
                    window_steps += 1
                    if self.pos.step % run.log_every == 0 or self.pos.step == self.stop_at:
                        now = time.perf_counter()
                        values["steps_per_s"] = window_steps / max(now - window_t, 1e-9)
                        window_t, window_steps = now, 0
                        record = {"step": self.pos.step, "split": "train", **values}
                        if self.rank == 0:
                            log_file.write(json.dumps(record) + "\n")
                            log_file.flush()
                        if progress:
                            progress(self.pos.step, values)
                    due = (run.checkpoint_every and self.pos.step % run.checkpoint_every == 0) or self.pos.step in run.checkpoint_at
                    if due and self.rank == 0:
                        self.save()
                    if self.pos.step >= self.stop_at or self._out_of_time():
                        break
                else:  # iteration finished: evaluate and checkpoint, as the reference
                    if produced == 0:  # __init__ checks the batch fits; never loop on nothing
                        raise RuntimeError(f"iteration {self.pos.iteration} of {run.data} yielded no batch")
                    self.pos.iteration += 1
                    self.pos.batch = 0
                    last_eval = self.evaluate()
                    if self.rank == 0:
                        log_file.write(json.dumps({"step": self.pos.step, "split": "test", **last_eval}) + "\n")
                        self.save()
                    continue
                break
        last_eval = self.evaluate()
        wall = self.wall_before + time.perf_counter() - self._t0
        if self.rank == 0:
            with open(metrics_path, "a") as log_file:
                log_file.write(json.dumps({"step": self.pos.step, "split": "test", **last_eval}) + "\n")
            self.save()
            with self.ema_weights():
                save_model(self.model, self.out / "model.safetensors", source=f"airinterp train {run.preset}, step {self.pos.step}")
            card = {
                "airinterp_version": __version__,
                "preset": run.preset, "variant": run.variant, "data": str(run.data),
                "data_build": _read_json(Path(run.data) / "airinterp_build.json"),
                "data_sha256": self.data_fingerprint,
                "steps": self.pos.step, "schedule_total_steps": self.total_steps, "wall_time_s": round(wall, 1),
                "device": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
                "threads": torch.get_num_threads(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
                "weights": f"EMA of the parameters (rate {run.ema_rate}; buffers live)" if run.ema_rate else "the trained parameters",
                "final_eval": last_eval, "config": self.config.model_dump(),
                "run": json.loads(run.model_dump_json()),
            }  # fmt: skip
            if run.init_from is not None:
                budgets = self.budgets(wall)
                card.update({
                    "init_from": str(run.init_from), "budgets": budgets,
                    "cumulative_steps": sum(int(b.get("steps") or 0) for b in budgets),
                    "cumulative_wall_time_s": round(sum(float(b.get("wall_time_s") or 0) for b in budgets), 1),
                    "optimizer_note": "each budget restarts the optimizer and its warmup (warm start from weights only; "
                                      "the optimizer state does not travel between budgets)",
                })  # fmt: skip
            atomic_write_text(self.out / "card.json", json.dumps(card, indent=2, default=str) + "\n")
        return last_eval


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())["config"]
    except (OSError, KeyError, ValueError):
        return None


