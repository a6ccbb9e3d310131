import hashlib
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

from airinterp.model import AIRConfig, HookedAIR

# the same examples on every run: CI must not depend on luck
# (and no example database: the suite writes nothing into the checkout)
settings.register_profile("airinterp", derandomize=True, deadline=None, database=None)
settings.load_profile("airinterp")

ROOT = Path(__file__).parents[1]
DATA = Path(__file__).parent / "data"
FIXTURES = DATA / "air_reference"
VARIANT_DUMPS = DATA / "variants"


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="device to run the model tests on (cpu or cuda)")


def checkout_state(root: Path = ROOT) -> dict[str, str]:
    """sha256 of every file of the checkout a user owns: what git tracks, untracked files it does
    not ignore, and everything under out/ (where the README's commands write)."""
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode().split("\0")
    paths = {root / p for p in listed if p} | {p for p in (root / "out").rglob("*")}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(paths) if p.exists() or p.is_symlink()}  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def _checkout_left_as_found():
    """The suite leaves the user's checkout as it found it (tracked files, untracked ones, out/)."""
    if not (ROOT / ".git").exists():
        yield
        return
    before = checkout_state()
    yield
    after = checkout_state()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the test suite changed the checkout: {changed[:10]}"


@pytest.fixture
def device(request) -> str:
    dev = request.config.getoption("--device")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    return dev


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


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
