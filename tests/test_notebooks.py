"""The notebooks in analyses/ run top to bottom as notebooks (jupytext -> nbclient, a real
kernel) from a folder other than the repository's, at small sizes: a cell after each one's
``parameters`` cell overrides its sizes. Figures carry an HTML copy; no progress-bar warning."""

from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "analyses").glob("*.py"))
SMALL = {"N_PUZZLES": 4, "ACTS": [0, 1], "ABLATE_ACTS": [1]}  # (the probes notebook: fewer fits and rollouts)


def test_there_are_the_nine_notebooks():
    assert [p.stem for p in NOTEBOOKS] == ["01_hooks_tour", "02_decoded_rollouts", "03_freeze", "04_attention_locality", "05_patching", "06_convergence", "07_write_locality", "08_geometry", "09_probes"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    nb = jupytext.read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{path.name}: one cell tagged parameters"
    # a notebook defines nothing of its own: it imports airinterp and calls it
    assert not any(line.lstrip().startswith(("def ", "class ")) for c in code for line in c.source.splitlines())
    names = nb.cells[params[0]].source
    override = "\n".join(f"{k} = {v!r}" for k, v in SMALL.items() if f"{k} =" in names)
    nb.cells.insert(params[0] + 1, nbformat.v4.new_code_cell(override or "pass"))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if "Warning" in o.get("text", "")], "a warning in the notebook's output"
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert all("text/html" in o["data"] for o in figures), "a figure without its HTML copy"
    assert figures or path.stem == "01_hooks_tour"
    assert any(o.get("output_type") in ("execute_result", "display_data") for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))  # fmt: skip
