"""Dump a parity fixture from the unmodified TRM or HRM reference: TinyRecursiveModels' ``trm.py``
(``--model trm``) or ``trm_singlez.py`` (``--model trm_singlez``), HRM's ``hrm_act_v1.py``
(``--model hrm``; HRM imports flash-attn unconditionally, so a CPU stand-in for ``flash_attn_func``
is installed first: SDPA on the permuted q, k, v, the call AIR's own fallback makes).

Runs the reference class from a checkout (``--repo``) on CPU in float32, with
seeded random weights (the reference's init plus a seeded perturbation, so that no weight is at
its special init), on seeded random Sudoku-vocabulary inputs, in eval mode for ``--act-steps`` ACT
steps, and records what ``airinterp verify-reference`` compares: the state each call of the stack
writes (``ref.act{a}.sub{k}.z_L`` or ``.z_H``; single-z: always its one state ``z_L``), each step's
logits and Q logits, x~ and the initial states (HRM: the calls of its two stacks, in order). The manifest has the fields of ``../shared/fixtures/recurrent_reference``'s. Nothing of the
reference is copied: it is imported from ``--repo`` and run.

    python tools/dump_recurrent.py --repo ../TinyRecursiveModels --model trm_singlez --seq-len 36 --out tests/data/recurrent_reference/trm_singlez_sudoku6
    python tools/dump_recurrent.py --repo ../HRM --model hrm --pos learned --h-layers 1 --out /tmp/hrm_learned
"""

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file


def install_flash_attn_stand_in() -> None:
    """``flash_attn.flash_attn_func`` for HRM on a CPU: q, k, v [B, T, H, d] -> SDPA -> [B, T, H, d]."""
    import types

    def flash_attn_func(q, k, v, causal=False, **kw):
        if kw:
            raise NotImplementedError(f"flash_attn stand-in: {sorted(kw)} not supported")
        out = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=causal)
        return out.transpose(1, 2)

    sys.modules["flash_attn"] = types.SimpleNamespace(flash_attn_func=flash_attn_func)  # type: ignore[assignment]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", required=True, help="checkout of SamsungSAILMontreal/TinyRecursiveModels or sapientinc/HRM")
    p.add_argument("--model", default="trm", choices=["trm", "trm_singlez", "hrm"])
    p.add_argument("--h-layers", type=int, default=2, help="HRM: blocks of the H stack")
    p.add_argument("--out", required=True, help="output path without extension")
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--h-cycles", type=int, default=2)
    p.add_argument("--l-cycles", type=int, default=3)
    p.add_argument("--prefix-len", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=81)
    p.add_argument("--mlp-t", action="store_true")
    p.add_argument("--vocab", type=int, default=11, help="11: Sudoku, 6: Maze")
    p.add_argument("--puzzle-emb-ndim", type=int, default=None, help="width of the puzzle embedding [default: --hidden; 0: none]")
    p.add_argument("--pos", default="rope", help="rope, learned or none")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--act-steps", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--commit", default="", help="the reference commit, when --repo is not a git checkout")
    args = p.parse_args()
    repo = Path(args.repo).resolve()
    args.single_z = args.model == "trm_singlez"
    hrm = args.model == "hrm"
    module = "models/hrm/hrm_act_v1.py" if hrm else f"models/recursive_reasoning/{args.model}.py"
    if not (repo / module).is_file():
        sys.exit(f"--repo {repo}: no {module} there")
    sys.path.insert(0, str(repo))
    import importlib

    config = dict(
        batch_size=args.batch, seq_len=args.seq_len, num_puzzle_identifiers=1,
        puzzle_emb_ndim=args.hidden if args.puzzle_emb_ndim is None else args.puzzle_emb_ndim,
        vocab_size=args.vocab, H_cycles=args.h_cycles, L_cycles=args.l_cycles, L_layers=args.layers,
        hidden_size=args.hidden, expansion=4, num_heads=args.heads, pos_encodings=args.pos, halt_max_steps=16,
        halt_exploration_prob=0.1, forward_dtype="float32",
    )  # fmt: skip
    if hrm:
        install_flash_attn_stand_in()
        cls = importlib.import_module("models.hrm.hrm_act_v1").HierarchicalReasoningModel_ACTV1
        config |= {"H_layers": args.h_layers}
    else:
        cls = importlib.import_module(f"models.recursive_reasoning.{args.model}").TinyRecursiveReasoningModel_ACTV1
        config |= {"H_layers": 0, "mlp_t": args.mlp_t, "puzzle_emb_len": args.prefix_len, "no_ACT_continue": True}
    torch.manual_seed(args.seed)
    model = cls(dict(config))
    gen = torch.Generator().manual_seed(args.seed + 1)
    with torch.no_grad():  # move every weight off its special init (q head 0 / -5, zero puzzle rows)
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point() and "rotary_emb" not in name:  # the RoPE tables stay as computed
                t.add_(0.05 * torch.randn(t.shape, generator=gen))
    model.eval()
    inputs = torch.randint(1, args.vocab, (args.batch, args.seq_len), generator=gen)
    batch = {"inputs": inputs, "labels": inputs.clone(), "puzzle_identifiers": torch.zeros(args.batch, dtype=torch.int32)}

    records: list[torch.Tensor] = []

    def written(k: int) -> str:
        """The state the k-th call (1-based) of an ACT step writes: every (L_cycles + 1)-th is an H-call."""
        return "z_H" if k % (args.l_cycles + 1) == 0 and not args.single_z else "z_L"

    handles = [getattr(model.inner, level).register_forward_hook(lambda _m, _i, out: records.append(out.detach().clone()))
               for level in (("L_level", "H_level") if hrm else ("L_level",))]  # fmt: skip
    tensors: dict[str, torch.Tensor] = {}
    per_step = args.h_cycles * (args.l_cycles + 1)
    with torch.no_grad():
        carry = model.initial_carry(batch)
        tensors["ref.input_embeddings"] = model.inner._input_embeddings(batch["inputs"], batch["puzzle_identifiers"])
        for a in range(1, args.act_steps + 1):
            records.clear()
            carry, out = model(carry, batch)
            if len(records) != per_step:
                sys.exit(f"expected {per_step} stack calls per ACT step, saw {len(records)}")
            for k, z in enumerate(records, start=1):
                tensors[f"ref.act{a}.sub{k}.{written(k)}"] = z
            tensors[f"ref.act{a}.logits"] = out["logits"]
            tensors[f"ref.act{a}.q_halt_logits"] = out["q_halt_logits"]
            tensors[f"ref.act{a}.q_continue_logits"] = out["q_continue_logits"]
    for h in handles:
        h.remove()
    tensors["ref.init.z_L"] = model.inner.L_init.expand(args.batch, args.seq_len + model.inner.puzzle_emb_len, -1)
    if not args.single_z:
        tensors["ref.init.z_H"] = model.inner.H_init.expand(args.batch, args.seq_len + model.inner.puzzle_emb_len, -1)
    tensors["ref.inputs"] = inputs
    tensors["ref.labels"] = inputs.clone()
    tensors["ref.puzzle_identifiers"] = batch["puzzle_identifiers"]
    for k, v in model.state_dict().items():
        tensors["model." + k] = v
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    st = out.with_suffix(".safetensors")
    save_file(tensors, str(st), metadata={"recurrent_reference_fixture": json.dumps({"case": out.name, "repo": str(repo)})})
    commit = args.commit or subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    schedule = [("L", h, j) for h in range(args.h_cycles) for j in [*range(args.l_cycles), None]]
    manifest = {
        "case": out.name,
        "description": ("TRM single-z reference (one state z_L; L-calls f(z + x~), H-calls f(z))" if args.single_z else
                        "HRM reference (flash-attn stood in by SDPA)" if hrm else "TRM reference") + ", seeded random weights, random inputs, eval mode, float32 on CPU",
        "safetensors_file": st.name,
        "safetensors_sha256": hashlib.sha256(st.read_bytes()).hexdigest(),
        "reference": {
            "repo": "sapientinc/HRM" if hrm else "SamsungSAILMontreal/TinyRecursiveModels", "commit": commit,
            "model_module": module, "arch_name": "hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1" if hrm
            else f"recursive_reasoning.{args.model}@TinyRecursiveReasoningModel_ACTV1",
        },  # fmt: skip
        "config_dict_passed_to_model": config,
        "act_steps_recorded": list(range(1, args.act_steps + 1)),
        "substeps": [
            {"act_step": a, "sub_step": k, "kind": "L" if j is not None else "H", "H_step": h, "L_step": j,
             written(k): f"ref.act{a}.sub{k}.{written(k)}"}
            for a in range(1, args.act_steps + 1) for k, (_, h, j) in enumerate(schedule, start=1)
        ],  # fmt: skip
        "tensors": [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")} for k, v in tensors.items()],
        "seeds": {"torch.manual_seed": args.seed, "perturbation_and_inputs": args.seed + 1},
        "runtime": {"torch": torch.__version__, "device": "cpu", "dtype": "float32"},
    }
    out.with_suffix(".json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {st} ({st.stat().st_size / 1e6:.2f} MB) and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
