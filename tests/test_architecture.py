"""The import rules of docs/architecture.md: no upward import between the package's floors, no
private name reached across packages, nothing importing the package root."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).parents[1] / "airinterp"
#: floor of each top-level part of the package (docs/architecture.md)
FLOORS = {
    "_version": 0, "errors": 0, "io": 0, "types": 0,
    "model": 1, "tasks": 2, "checkpoints": 3, "analysis": 4, "train": 5, "report": 6, "cli": 7,
}  # fmt: skip
#: (importing module, imported part): the listed exceptions, with their reason in docs/architecture.md
ALLOWED_UPWARD = {("airinterp.model.inputs", "tasks")}


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "airinterp" else None


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """Every ``airinterp`` import of a file (function-level ones too): (module, names, line)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "airinterp":
            out.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "airinterp"]
    return out


def _modules() -> list[tuple[str, Path]]:
    mods = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(p for p in rel.parts if p != "__init__")
        mods.append((name, path))
    return mods


def violations() -> list[str]:
    bad = []
    for name, path in _modules():
        src = _part(name)
        if src is None:  # the package root: the front door may import anything
            continue
        for module, names, line in _imports(path):
            dst = _part(module)
            where = f"{name}:{line}"
            if dst is None:
                if module == "airinterp" and names != ["__version__"]:
                    bad.append(f"{where}: imports the package root ({names}); import from the owning module")
                elif module == "airinterp":
                    bad.append(f"{where}: imports __version__ from the package root; use airinterp._version")
                continue
            if dst not in FLOORS or src not in FLOORS:
                bad.append(f"{where}: {name} -> {module}: a part of the package not in docs/architecture.md")
                continue
            if FLOORS[dst] > FLOORS[src] and (name, dst) not in ALLOWED_UPWARD:
                bad.append(f"{where}: {src} (floor {FLOORS[src]}) imports {module} (floor {FLOORS[dst]}): upward")
            if dst != src:
                private = [n for n in names if n.startswith("_") and not n.endswith("__")]
                if private:
                    bad.append(f"{where}: {src} imports the private {private} from {module}")
    return bad


def test_every_part_of_the_package_has_a_floor():
    parts = {p.name.removesuffix(".py") for p in PKG.iterdir() if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert parts - {"__init__"} == set(FLOORS)


def test_no_upward_or_private_import():
    assert violations() == []


@pytest.mark.parametrize(
    ("module", "source", "needle"),
    [
        ("airinterp.model.air", "from airinterp.analysis.run import rollout\n", "upward"),
        ("airinterp.analysis.inputs", "def f():\n    from airinterp.train.loop import Trainer\n", "upward"),
        ("airinterp.analysis.suite", "from airinterp.checkpoints.paths import _x\n", "private"),
        ("airinterp.tasks.rules", "import airinterp\n", "package root"),
    ],
)
def test_the_check_fails_on_a_violation(tmp_path, monkeypatch, module, source, needle):
    """The test itself can fail: an upward, private or root import planted in a copy of a module."""
    target = dict(_modules())[module]
    planted = tmp_path / target.name
    planted.write_text(target.read_text() + "\n" + source)
    real = _modules

    def with_plant():
        return [(n, planted if n == module else p) for n, p in real()]

    monkeypatch.setattr(f"{__name__}._modules", with_plant)
    found = violations()
    assert any(needle in v for v in found), found
