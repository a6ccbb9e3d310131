#!/usr/bin/env python
"""Dump the reference AIR implementation's tensors for `airinterp verify-reference`.

Run it with a checkout of the reference repository (github.com/juchengshen/air) on the path;
the reference model code is imported at run time, nothing of it is copied here::

    python tools/dump_reference.py --repo ../air --checkpoint checkpoints/Sudoku/run1/step_26040 \
        --data data/sudoku-extreme-1k-aug-1000 --batch 2 --out dumps/sudoku_run1
    python tools/dump_reference.py --repo ../air --random-init --variant Lx_Hx --hidden 64 \
        --heads 4 --vocab 11 --seq-len 81 --out dumps/lx_hx_random

It writes ``OUT.safetensors`` (weights under the reference's ``model.inner.*`` names plus
``ref.*`` tensors) and ``OUT.json`` (manifest), in the format of
``shared/fixtures/air_reference`` (README there). It records, for ACT steps 1..``--act-steps``:
the state written by every call of the shared stack (``ref.act{a}.sub{k}.z_L|z_H``), the logits
and Q logits after each step, and, for ACT step 1, the two operands of every stack call
(``ref.act1.sub{k}.hidden_states_in``, ``.input_injection``: the reference's
``f_level(hidden_states, input_injection)``, which adds them first), g(x~) for the gx_* controls
(``ref.g_input``) and the attention probabilities of the first L- and the first H-update (softmax(q k^T / sqrt(d)) recomputed in float32 from the q, k that the
reference hands to SDPA). Everything runs on CPU in float32 by default, in eval mode, under
``torch.inference_mode()``; flash-attn, if installed, is bypassed so SDPA is the kernel.
"""

import argparse
import hashlib
import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file


def stack_schedule(H_cycles: int, L_cycles: int) -> list[str]:
    """Stage ("L"/"H") of each call of the shared stack in one ACT step."""
    stages = []
    for _h in range(H_cycles):
        stages += ["L"] * L_cycles
        stages.append("H")
    return stages


def check_repo(repo: str) -> None:
    """The reference checkout must be there before anything is imported from it."""
    root = Path(repo)
    missing = [f for f in ("utils/functions.py", "models/layers.py") if not (root / f).is_file()]
    if missing:
        sys.exit(
            f"error: --repo {repo}: not a checkout of the reference repository (no {', '.join(missing)}); "
            "clone github.com/juchengshen/air and pass its path"
        )


def build_reference(args: argparse.Namespace):
    sys.path.insert(0, str(Path(args.repo).resolve()))
    functions = importlib.import_module("utils.functions")
    layers = importlib.import_module("models.layers")
    if getattr(layers, "flash_attn_func", None) is not None:
        layers.flash_attn_func = None  # use the reference's own SDPA fallback
    if args.checkpoint:
        import yaml

        ckpt = Path(args.checkpoint)
        cfg_path = Path(args.config) if args.config else ckpt.parent / "all_config.yaml"
        doc = yaml.safe_load(cfg_path.read_text())
        arch = dict(doc["arch"])
        name = arch.pop("name")
        arch.pop("loss", None)
        state = torch.load(str(ckpt), map_location="cpu", weights_only=True)
        state = {k.removeprefix("_orig_mod.").removeprefix("model."): v for k, v in state.items()}
        arch["vocab_size"] = int(state["inner.embed_tokens.embedding_weight"].shape[0])
        arch["num_puzzle_identifiers"] = int(state["inner.puzzle_emb.weights"].shape[0]) if "inner.puzzle_emb.weights" in state else 1
        arch["seq_len"] = args.seq_len
        if isinstance(arch.get("puzzle_emb_ndim"), str):
            arch["puzzle_emb_ndim"] = arch["hidden_size"]
    else:
        name = f"air.air_1net_{args.variant}@AIR"
        arch = dict(
            H_cycles=args.h_cycles, L_cycles=args.l_cycles, H_layers=args.layers, L_layers=args.layers,
            hidden_size=args.hidden, num_heads=args.heads, expansion=4, puzzle_emb_ndim=args.hidden,
            pos_encodings="rope", halt_max_steps=16, halt_exploration_prob=0.1, vocab_size=args.vocab,
            seq_len=args.seq_len, num_puzzle_identifiers=1, causal=False,
        )  # fmt: skip
        state = None
    arch["batch_size"] = args.batch
    arch["forward_dtype"] = args.dtype
    cls = functions.load_model_class(name)
    torch.manual_seed(args.seed)
    model = cls(arch)
    if state is not None:
        model.load_state_dict(state, strict=True)
    else:  # perturb every tensor so zero-initialised heads and prefixes are exercised
        gen = torch.Generator().manual_seed(args.seed + 10000)
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    std = 1 / math.sqrt(args.hidden) if not t.any() else 0.02
                    t.add_(std * torch.randn(t.shape, generator=gen).to(t.dtype))
    return name, arch, model.eval()


def make_batch(args: argparse.Namespace, arch: dict) -> dict[str, torch.Tensor]:
    if args.data:
        import numpy as np

        split = Path(args.data) / args.split
        inputs = np.load(split / "all__inputs.npy", mmap_mode="r")[: args.batch]
        labels = np.load(split / "all__labels.npy", mmap_mode="r")[: args.batch]
        ids = np.load(split / "all__puzzle_identifiers.npy")[: args.batch]
        return dict(inputs=torch.tensor(np.array(inputs), dtype=torch.int32),
                    labels=torch.tensor(np.array(labels), dtype=torch.int32),
                    puzzle_identifiers=torch.tensor(np.array(ids), dtype=torch.int32))  # fmt: skip
    gen = torch.Generator().manual_seed(args.seed + 1)
    inputs = torch.randint(1, arch["vocab_size"], (args.batch, arch["seq_len"]), generator=gen, dtype=torch.int32)
    return dict(inputs=inputs, labels=inputs.clone(), puzzle_identifiers=torch.zeros(args.batch, dtype=torch.int32))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", default=".", help="checkout of the reference repository")
    p.add_argument("--out", required=True, help="output path without extension")
    p.add_argument("--checkpoint", help="reference step_<N> file (all_config.yaml beside it)")
    p.add_argument("--config", help="all_config.yaml, if not beside the checkpoint")
    p.add_argument("--random-init", action="store_true", help="seeded random weights instead of a checkpoint")
    p.add_argument("--variant", default="Lx_H")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--h-cycles", type=int, default=2)
    p.add_argument("--l-cycles", type=int, default=2)
    p.add_argument("--vocab", type=int, default=11)
    p.add_argument("--seq-len", type=int, default=81)
    p.add_argument("--data", help="reference dataset directory (inputs from its first examples)")
    p.add_argument("--split", default="test")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--act-steps", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--commit", default="", help="the reference commit, when --repo is not a git checkout")
    p.add_argument("--attn-rows", type=int, default=0, help="keep only this many attention query rows (0 = all)")
    args = p.parse_args()
    if not args.checkpoint and not args.random_init:
        p.error("give --checkpoint or --random-init")
    check_repo(args.repo)
    if args.checkpoint and not Path(args.checkpoint).is_file():
        sys.exit(f"error: --checkpoint {args.checkpoint}: no such file")
    torch.set_num_threads(1)

    name, arch, model = build_reference(args)
    batch = make_batch(args, arch)
    inner = model.inner
    stages = stack_schedule(arch["H_cycles"], arch["L_cycles"])
    rec: dict[str, torch.Tensor] = {}
    where = {"act": 0, "sub": 0, "layer": 0}

    def on_stack_call(_mod, call_args, call_kwargs):
        where["sub"] += 1
        where["layer"] = 0
        if where["act"] == 1:  # the two operands the stack adds first (`hidden_states + input_injection`)
            first = call_args[0] if call_args else call_kwargs["hidden_states"]
            injection = call_args[1] if len(call_args) > 1 else call_kwargs["input_injection"]
            rec[f"ref.act1.sub{where['sub']}.hidden_states_in"] = first.detach().clone()
            rec[f"ref.act1.sub{where['sub']}.input_injection"] = injection.detach().clone()

    def on_stack_out(_mod, _inputs, out):
        stage = stages[where["sub"] - 1]
        rec[f"ref.act{where['act']}.sub{where['sub']}.z_{stage}"] = out.detach().clone()

    sdpa = F.scaled_dot_product_attention

    def recording_sdpa(q, k, v, *a, **kw):
        if where["act"] == 1 and where["sub"] in (1, stages.index("H") + 1):
            probs = torch.softmax((q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1]), dim=-1)
            if args.attn_rows:
                probs = probs[..., rec["ref.attn_query_index"], :]
            rec[f"ref.act1.sub{where['sub']}.attn_probs.layer{where['layer']}"] = probs
        where["layer"] += 1
        return sdpa(q, k, v, *a, **kw)

    inner.f_level.register_forward_pre_hook(on_stack_call, with_kwargs=True)
    inner.f_level.register_forward_hook(on_stack_out)
    torch.nn.functional.scaled_dot_product_attention = recording_sdpa
    tanh = torch.tanh
    if hasattr(inner, "g_input"):  # gx_* controls: record g(x~) as the stack's injection uses it
        def on_g(_mod, _inputs, out):
            if where["act"] == 1 and "ref.g_input" not in rec:
                rec["ref.g_input"] = out.detach().clone()
                where["g_linear"] = out

        def recording_tanh(x, *a, **kw):  # gx_non_linear applies tanh to the linear map's output
            out = tanh(x, *a, **kw)
            if x is where.get("g_linear"):
                rec["ref.g_input"] = out.detach().clone()
            return out

        inner.g_input.register_forward_hook(on_g)
        torch.tanh = recording_tanh
    T = arch["seq_len"] + inner.puzzle_emb_len
    if args.attn_rows:
        g = torch.Generator().manual_seed(args.seed + 2)
        fixed = [0, 1, T - 1]
        rest = [i for i in torch.randperm(T, generator=g).tolist() if i not in fixed][: args.attn_rows - 3]
        rec["ref.attn_query_index"] = torch.tensor(sorted(fixed + rest), dtype=torch.int64)
    try:
        with torch.inference_mode():
            rec["ref.input_embeddings"] = inner._input_embeddings(batch["inputs"], batch["puzzle_identifiers"])
            cos, sin = inner.rotary_emb()
            rec["ref.rope_cos"], rec["ref.rope_sin"] = cos.clone(), sin.clone()
            carry = model.initial_carry(batch)
            init = inner.reset_carry(carry.halted, carry.inner_carry)
            rec["ref.init.z_L"], rec["ref.init.z_H"] = init.z_L.clone(), init.z_H.clone()
            for a in range(1, args.act_steps + 1):
                where["act"], where["sub"] = a, 0
                carry, out = model(carry, batch)
                rec[f"ref.act{a}.logits"] = out["logits"].clone()
                rec[f"ref.act{a}.q_halt_logits"] = out["q_halt_logits"].clone()
                rec[f"ref.act{a}.q_continue_logits"] = out["q_continue_logits"].clone()
    finally:
        torch.nn.functional.scaled_dot_product_attention = sdpa
        torch.tanh = tanh

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    tensors["ref.inputs"] = batch["inputs"]
    tensors["ref.labels"] = batch["labels"]
    tensors["ref.puzzle_identifiers"] = batch["puzzle_identifiers"]
    tensors.update({k: v.contiguous() for k, v in rec.items()})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    st_path = out.with_suffix(".safetensors")
    save_file(tensors, str(st_path), metadata={"air_reference_dump": out.name})
    try:
        commit = subprocess.run(["git", "-C", args.repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = ""
    commit = commit or args.commit
    module = name.split("@")[0]
    substeps, last = [], {"L": "ref.init.z_L", "H": "ref.init.z_H"}
    for a in range(1, args.act_steps + 1):
        for k, stage in enumerate(stages, start=1):
            last[stage] = f"ref.act{a}.sub{k}.z_{stage}"
            substeps.append({"act_step": a, "sub_step": k, "kind": stage, "z_L": last["L"], "z_H": last["H"]})
    manifest = {
        "case": out.name,
        "safetensors_file": st_path.name,
        "safetensors_sha256": hashlib.sha256(st_path.read_bytes()).hexdigest(),
        "reference": {"repo": "github.com/juchengshen/air", "commit": commit, "arch_name": name,
                      "model_module": f"models/{module.replace('.', '/')}.py"},
        "runtime": {"torch": torch.__version__, "python": sys.version.split()[0], "device": "cpu",
                    "threads": 1, "module_mode": "eval()", "grad": "torch.inference_mode()"},
        "dump_args": {k: v for k, v in vars(args).items() if k not in ("repo", "out")},
        "config_dict_passed_to_AIR": arch,
        "act_steps_recorded": list(range(1, args.act_steps + 1)),
        "substeps": substeps,
        "tensors": [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype)} for k, v in tensors.items()],
    }  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(manifest, indent=1))
    print(f"wrote {st_path} and {out.with_suffix('.json')}: {len(rec)} recorded tensors")


if __name__ == "__main__":
    main()
