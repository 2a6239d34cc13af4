"""examples/walkthrough.ipynb runs from top to bottom and shows what the seed shows: its code cells in process
(each cell's last expression shown as Jupyter would), and, in the slow run, headless in a real kernel."""

from __future__ import annotations

import ast
import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "walkthrough.ipynb"
SEED_LINE = "CUDA_VISIBLE_DEVICES=MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308 ./my_cuda_code &   # GI 1 CI 0"


def check_outputs(html: list[str], text: str) -> None:
    """What the walk-through must show, however it ran."""
    gis_table = next(table for table in html if "<th>placement</th>" in table and "<th>profile_id</th>" in table)
    assert gis_table.count("<td>MIG 2g.12gb</td>") == 2
    assert "<td>0:2</td>" in gis_table
    assert "<td>2:2</td>" in gis_table
    assert SEED_LINE in text
    assert any("MIG-6f79e1f8-f1ed-5121-976a-4ff3f0df8634" in table for table in html)  # the status view
    # The slice maps: the status as an SVG (the UUID in a compute instance's tooltip) and in ASCII, the plan's
    # before and after, a LayoutError's suggestions, a layout drawn on another model.
    statuses = [page for page in html if "<svg" in page and "<h4>GPU 0: NVIDIA A30" in page]
    assert statuses
    assert all(page.count('class="gi"') == 2 for page in statuses)
    assert any("MIG-6f79e1f8-f1ed-5121-976a-4ff3f0df8634</title>" in page for page in statuses)
    assert "  |         2g.12gb GI 1          |         2g.12gb GI 2          |" in text
    assert "  |     CI 0      :     CI 1      |     CI 0      :     CI 1      |" in text
    assert any("before: GPU 0" in page and "after: GPU 0" in page for page in html)
    assert any(page.startswith("<p><strong>LayoutError</strong>") and "suggested: GPU 0" in page for page in html)
    assert any("NVIDIA H100 80GB HBM3" in page and page.startswith("<svg") for page in html)


def test_walkthrough_cells_run_in_process() -> None:
    cells = [cell for cell in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"] if cell["cell_type"] == "code"]
    namespace: dict[str, Any] = {}
    html: list[str] = []
    printed = io.StringIO()
    for cell in cells:
        body = ast.parse("".join(cell["source"]))
        last = body.body.pop() if body.body and isinstance(body.body[-1], ast.Expr) else None
        with contextlib.redirect_stdout(printed):
            exec(compile(body, "<cell>", "exec"), namespace)  # noqa: S102  # the notebook's own code
            shown = None
            if isinstance(last, ast.Expr):  # Jupyter shows the value of a cell's last expression
                shown = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)  # noqa: S307
        to_html = getattr(shown, "_repr_html_", None)
        if to_html is not None:
            html.append(to_html())
    check_outputs(html, printed.getvalue())


@pytest.mark.slow
def test_walkthrough_notebook_runs() -> None:
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs the test extra")
    nbclient = pytest.importorskip("nbclient", reason="the notebook test needs the test extra")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=False).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    html = [output["data"]["text/html"] for output in outputs if "text/html" in output.get("data", {})]
    text = "\n".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    check_outputs(html, text)
