#!/usr/bin/env python
"""The convergence panel's cost against a hooks-off rollout of the same batch, side by side in one run.

**hooks-off** = ``model(tokens, n_act=N)`` under ``inference_mode``; **convergence** =
``run_convergence`` on the same puzzles and length (the layer lens after every block of every
update, streamed commit points, residuals). Target (issue 25): convergence <= 1.5x time. The two
are interleaved and repeated; medians are reported. Memory: each arm runs once more in a fresh
process per rollout length (1x, 2x, 4x the trained length) and reports that process's peak RSS
growth over loading (CUDA: ``max_memory_allocated``): the panel keeps per-puzzle scalars and one
token per cell and state, never the states, so its peak must not grow with the rollout's length
beyond what the plain rollout's does.

    python benchmarks/bench_convergence.py                        # the shipped default checkpoint
    python benchmarks/bench_convergence.py --task maze
    python benchmarks/bench_convergence.py --paper --batch 8      # random d=512, 16 ACT steps, 9x9
"""

import argparse
import multiprocessing as mp
import resource
import statistics
import tempfile
import time

import numpy as np
import torch


def _setup(args):
    from airinterp.tasks.dataset import PuzzleDataset, write_split
    from airinterp.tasks.rules import rules_for

    if args.paper:
        from airinterp.model import AIRConfig, HookedAIR

        seq, vocab = (81, 11) if args.task == "sudoku" else (900, 6)
        cfg = AIRConfig(vocab_size=vocab, seq_len=seq, puzzle_emb_ndim=512, hidden_size=512, num_heads=8, forward_dtype="float32",
                        task=args.task)  # fmt: skip
        model = HookedAIR(cfg, seed=0).to(args.device).eval()
        name = f"random paper-size {args.task}"
    else:
        import airinterp
        from airinterp.checkpoints.paths import DEFAULT_CHECKPOINTS, REPO

        path = args.checkpoint or REPO / DEFAULT_CHECKPOINTS[args.task]
        model = airinterp.load(path, device=args.device)
        name = str(path)
    cfg = model.config
    rng = np.random.default_rng(0)
    inputs = rng.integers(1, cfg.vocab_size, (args.batch, cfg.seq_len)).astype(np.uint8)
    tmp = tempfile.mkdtemp()
    write_split(tmp, "test", inputs, inputs, [1] * args.batch, cfg.vocab_size)
    ds = PuzzleDataset(tmp, "test")
    tokens = torch.from_numpy(inputs.astype(np.int64)).to(args.device)
    return model, ds, tokens, rules_for(cfg.task, cfg.seq_len), name


def _arms(args, model, ds, tokens, rules, n_act):
    from airinterp.analysis.convergence import run_convergence

    idx = np.arange(args.batch)

    def plain():
        with torch.inference_mode():
            model(tokens, n_act=n_act)

    def convergence():
        run_convergence(model, ds, idx, rules, n_act=n_act, batch_size=args.batch)

    return {"hooks-off": plain, "convergence": convergence}


def _peak_child(args, arms, arm: str, n_act: int, q) -> None:
    """In a fresh process: load, run ``arms(...)[arm]`` once, put the peak memory growth (MB) on ``q``."""
    torch.set_num_threads(args.threads)
    model, ds, tokens, rules, _ = _setup(args)
    fn = arms(args, model, ds, tokens, rules, n_act)[arm]
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    if cuda:
        torch.cuda.synchronize()
        q.put((torch.cuda.max_memory_allocated() - base) / 2**20)
    else:
        q.put((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)


def peak_memory(args, arms, arm: str, n_act: int) -> float:
    """Peak memory growth over loading (MB; CPU max RSS, CUDA max allocated) of one run of arm
    ``arm`` of the factory ``arms`` (a module-level function, as the benchmarks' ``_arms``), in a
    fresh process so that earlier arms leave nothing behind."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_peak_child, args=(args, arms, arm, n_act, q))
    p.start()
    v = q.get()
    p.join()
    return v


def parse_args(doc: str) -> argparse.Namespace:
    """The options of the analysis benchmarks beside a hooks-off rollout (this one and
    bench_write_locality.py); sets the torch threads."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[1])
    ap.add_argument("--checkpoint", default=None, help="airinterp checkpoint (default: the shipped one for --task)")
    ap.add_argument("--paper", action="store_true", help="a random paper-size model instead (d=512, 8 heads, 16 ACT steps)")
    ap.add_argument("--task", default="sudoku", choices=["sudoku", "maze"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    return args


def median_times(arms: dict, repeats: int, device: str) -> dict[str, float]:
    """Each arm warmed up once, then run ``repeats`` times interleaved; the median seconds per arm."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for fn in arms.values():  # warm up
        fn()
    times: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(repeats):
        for k, fn in arms.items():
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    args = parse_args(__doc__)
    model, ds, tokens, rules, name = _setup(args)
    trained = model.config.halt_max_steps
    n_act = 2 * trained
    arms = _arms(args, model, ds, tokens, rules, n_act)
    med = median_times(arms, args.repeats, args.device)
    c = model.config
    print(f"{name}: batch {args.batch}, {n_act} ACT steps ({trained} trained) = {n_act * c.n_updates} updates x {c.L_layers} "
          f"blocks, {c.seq_len} cells, d={c.hidden_size}, {args.device}, {args.threads} threads")  # fmt: skip
    print(f"{'arm':<14}{'median s':>10}")
    for k in arms:
        print(f"{k:<14}{med[k]:>10.4f}")
    print(f"convergence / hooks-off: {med['convergence'] / med['hooks-off']:.3f}x  (target <= 1.5x)")

    print(f"peak memory growth over loading, one fresh process per cell (MB; {'CUDA allocated' if args.device != 'cpu' else 'CPU max RSS'}):")
    print(f"{'length':<10}{'hooks-off':>12}{'convergence':>13}{'difference':>12}{'kept':>8}{'state cache':>13}")
    for mult in (1, 2, 4):
        peaks = {}
        for arm in ("hooks-off", "convergence"):
            peaks[arm] = peak_memory(args, _arms, arm, mult * trained)
        K = mult * trained * c.n_updates
        kept = (args.batch * K * (2 * c.L_layers + 1) * 4 + args.batch * c.seq_len * 8 * 4) / 2**20  # lens, residual; tokens
        cache = args.batch * K * c.n_pos * c.hidden_size * 4 / 2**20  # every update's output, float32
        print(f"{f'{mult}x ({mult * trained})':<10}{peaks['hooks-off']:>12.1f}{peaks['convergence']:>13.1f}"
              f"{peaks['convergence'] - peaks['hooks-off']:>12.1f}{kept:>8.1f}{cache:>13.1f}")  # fmt: skip
    print("kept: what the recorder holds per batch (per-sub-step scalars, one token and position per cell and state); "
          "state cache: the updates' outputs a cache-based lens would hold")


if __name__ == "__main__":
    main()
