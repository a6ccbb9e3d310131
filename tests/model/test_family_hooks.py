"""Golden hook catalogues of AIR's siblings on tiny configs: the names a user addresses must not move.

Regenerate after a deliberate change: ``python tests/model/test_family_hooks.py`` (then review the diff)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2]))
from airinterp.model import hook_catalogue  # noqa: E402
from tests.helpers import DATA, make_config  # noqa: E402

MEMBERS = {
    "trm": dict(family="trm", H_cycles=2, L_cycles=3, puzzle_emb_len=3),
    "trm_mlp_t": dict(family="trm", H_cycles=2, L_cycles=3, mlp_t=True, pos_encodings="none"),
    "hrm": dict(family="hrm", L_layers=2, H_layers=1),
    "trm_singlez": dict(family="trm_singlez", H_cycles=2, L_cycles=2, puzzle_emb_len=3),
}


def catalogue(member: str) -> str:
    return "".join(f"{name}\t{shape}\n" for name, shape in hook_catalogue(make_config(**MEMBERS[member]), 2))


@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_golden_catalogue(member):
    assert catalogue(member) == (DATA / "hooks" / f"{member}.txt").read_text()


if __name__ == "__main__":
    for m in MEMBERS:
        (DATA / "hooks" / f"{m}.txt").write_text(catalogue(m))
