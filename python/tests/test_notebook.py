"""docs/notebooks/seed.ipynb runs headless from top to bottom and draws its charts."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def test_seed_notebook_runs():
    nb = nbformat.read(ROOT / "docs" / "notebooks" / "seed.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "docs" / "notebooks")}}
    ).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    # Decode time per pair, alpha per step, the sweep.
    assert len(images) == 3
    # The inline strategy's row is in the last table.
    assert "by_layer" in code[-1].outputs[-1]["data"]["text/plain"]
