"""What the tests share: tiny configs, models, tokens and datasets, the CLI runner, and the checks of a
clean one-line error that leaves nothing on disk changed. Fixtures live in the conftest files."""

import hashlib
from pathlib import Path

import numpy as np
import torch
from typer.testing import CliRunner

from airinterp.cli import app
from airinterp.model import AIRConfig, HookedAIR
from airinterp.tasks.dataset import write_split

ROOT = Path(__file__).parents[1]
DATA = Path(__file__).parent / "data"
FIXTURES = DATA / "air_reference"
VARIANT_DUMPS = DATA / "variants"

runner = CliRunner()
TRAIN = ("--preset", "tiny", "--eval-limit", "4", "--epochs", "100", "--eval-interval", "50")


def make_config(**overrides) -> AIRConfig:
    """Tiny float32 config: d_model 32, 2 heads, 2 layers, 2x2 cycles, 3 ACT steps, 4x4 Sudoku."""
    base = dict(
        vocab_size=11, seq_len=16, puzzle_emb_ndim=32, hidden_size=32, num_heads=2, L_layers=2,
        H_cycles=2, L_cycles=2, halt_max_steps=3, forward_dtype="float32",
    )  # fmt: skip
    base.update(overrides)
    return AIRConfig(**base)


def make_model(seed: int = 0, perturb: bool = True, **overrides) -> HookedAIR:
    """A tiny model; ``perturb`` makes the zero-initialised Q head and prefix non-trivial."""
    model = HookedAIR(make_config(**overrides), seed=seed)
    if perturb:
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for t in model.state_dict().values():
                if t.is_floating_point():
                    t.add_(0.1 * torch.randn(t.shape, generator=gen))
    return model.eval()


def make_tokens(batch: int = 2, seq: int = 16, vocab: int = 11, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, vocab, (batch, seq), generator=gen)


def own_spread(model: HookedAIR, tokens: torch.Tensor, seeds: int = 2, **kwargs) -> float:
    """How far ``model(tokens, **kwargs)`` moves when every weight is multiplied by (1 + one float32
    ulp x N(0, 1)): the scale of last-bit kernel differences once the rollout has amplified them
    (tiny random models are chaotic). Tolerances between two kernels (another CPU, another batch
    shape, eager vs fused attention) are stated as a multiple of it."""
    from airinterp.checkpoints.verify import SENSITIVITY_REL, perturbed

    with torch.inference_mode():
        base = model(tokens, **kwargs)
        return max((perturbed(model, SENSITIVITY_REL, s)(tokens, **kwargs) - base).abs().max().item() for s in range(seeds))


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def snapshot(*roots: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``roots`` with its size and sha256 (and every directory)."""
    out: dict[str, tuple[int, str]] = {}
    for root in roots:
        root = Path(root)
        if root.is_file():
            out[str(root)] = (root.stat().st_size, hashlib.sha256(root.read_bytes()).hexdigest())
            continue
        for p in sorted(root.rglob("*")) if root.exists() else ():
            out[str(p)] = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) if p.is_file() else (-1, "dir")
    return out


def assert_clean_error(result, *needles: str, code: int = 2) -> str:
    """A handled error: exit ``code``, no traceback, exactly one ``error:`` line (or click's
    ``Error:`` for a usage error) holding every needle. Returns that line."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), f"unhandled {result.exception!r}\n{result.output}"
    assert "Traceback" not in result.output, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith(("error:", "Error:"))]
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def make_dataset(root: Path, n_train: int = 40, n_test: int = 8, seed: int = 0, seq: int = 16, vocab: int = 11) -> Path:
    """A small dataset in the reference format with random in-vocabulary tokens."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        inputs = rng.integers(1, vocab, (n, seq)).astype(np.uint8)
        labels = rng.integers(2, vocab, (n, seq)).astype(np.uint8)
        write_split(root, split, inputs, labels, [1] * n, vocab)
    return root
