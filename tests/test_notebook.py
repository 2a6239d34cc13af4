"""examples/walkthrough.ipynb runs headless from top to bottom and shows what the seed shows."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook test needs the test extra")
nbclient = pytest.importorskip("nbclient", reason="the notebook test needs the test extra")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "walkthrough.ipynb"


def test_walkthrough_notebook_runs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=False).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    html = [output["data"]["text/html"] for output in outputs if "text/html" in output.get("data", {})]
    text = "\n".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    gis_table = next(table for table in html if "<th>placement</th>" in table and "<th>profile_id</th>" in table)
    assert gis_table.count("<td>MIG 2g.12gb</td>") == 2
    assert "<td>0:2</td>" in gis_table
    assert "<td>2:2</td>" in gis_table
    assert "CUDA_VISIBLE_DEVICES=MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308 ./my_cuda_code &   # GI 1 CI 0" in text
    assert any("MIG-6f79e1f8-f1ed-5121-976a-4ff3f0df8634" in table for table in html)  # the status view
