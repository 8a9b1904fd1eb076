"""ProgressCallback in Jupyter: a real notebook, executed by a real kernel (nbclient), saves the
bars as they ended (every map at its total, nested maps included), as HTML and plain text without
terminal codes, and without ipywidgets."""

from __future__ import annotations

import re

import pytest

nbformat = pytest.importorskip("nbformat", reason="the dev extra installs nbformat")
nbclient = pytest.importorskip("nbclient", reason="the dev extra installs nbclient")
pytest.importorskip("ipykernel", reason="the dev extra installs ipykernel")

pytestmark = pytest.mark.timeout(600)  # a kernel starts slowly on a loaded machine

SETUP = """
import time
from hypernodes import HypernodesEngine, Pipeline, node
from hypernodes.telemetry import ProgressCallback


@node(output_name="doubled")
def double(x: int) -> int:
    time.sleep(0.002)
    return 2 * x


@node(output_name="total")
def total(doubled_all: list[int]) -> int:
    return sum(doubled_all)


each = Pipeline([double], name="inner").as_node(
    input_mapping={"xs": "x"}, output_mapping={"doubled": "doubled_all"}, map_over="xs", name="each"
)
outer = Pipeline([each, total], callbacks=[ProgressCallback()], name="outer")
flat = Pipeline([double], callbacks=[ProgressCallback()], name="flat")
"""

CELLS = {
    "flat map": 'len(flat.map({"x": list(range(60))}, map_over="x"))',
    "run with a nested map": 'outer.run({"xs": list(range(20))})["total"]',
    "threaded map of nested maps": """
with HypernodesEngine(map_executor="threaded", node_executor="threaded") as engine:
    rows = outer.with_engine(engine).map({"xs": [[1, 2, 3, 4]] * 5}, map_over="xs")
len(rows)
""",
    "flat map again": 'len(flat.map({"x": list(range(60))}, map_over="x"))',
    # the kernel's event loop is running: the async executor works from a helper thread
    "async map in the kernel's loop": """
with HypernodesEngine(map_executor="async", node_executor="async") as engine:
    rows = outer.with_engine(engine).map({"xs": [[1, 2, 3, 4]] * 5}, map_over="xs")
len(rows)
""",
}

ANSI = re.compile(r"\x1b\[")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(SETUP)] + [
        nbformat.v4.new_code_cell(code.strip()) for code in CELLS.values()
    ]
    folder = tmp_path_factory.mktemp("notebook")
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        startup_timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    path = folder / "progress.ipynb"
    nbformat.write(notebook, path)  # what a saved notebook holds
    return nbformat.read(path, as_version=4)


def bars(cell) -> str:
    """The plain text of the single progress display of ``cell``."""
    displays = [out for out in cell.outputs if out.output_type == "display_data"]
    assert len(displays) == 1, cell.outputs  # one display, updated in place
    assert "hypernodes-progress" in displays[0].data["text/html"]
    return displays[0].data["text/plain"]


def line(text: str, label: str) -> str:
    found = [row for row in text.splitlines() if row.strip().startswith(label)]
    assert len(found) == 1, text
    return found[0]


def test_no_cell_has_terminal_codes_or_errors(executed):
    for cell in executed.cells:
        assert not [out for out in cell.outputs if out.output_type == "error"], cell.outputs
        for out in cell.outputs:
            assert not ANSI.search(str(out)), out
            assert out.output_type != "stream" or out.name != "stderr", out


def test_flat_map_is_saved_at_its_total(executed):
    cell = executed.cells[1]
    text = bars(cell)
    assert re.search(r"60/60", line(text, "flat (map)"))
    assert re.search(r"60/60", line(text, "double"))
    assert "/s" in line(text, "flat (map)")  # a rate for a real map
    assert cell.outputs[-1].data["text/plain"] == "60"


def test_nested_map_of_a_run_is_saved_at_its_total(executed):
    text = bars(executed.cells[2])
    assert re.search(r"1/1", line(text, "outer (run)"))
    assert re.search(r"20/20", line(text, "each (map)"))
    assert re.search(r"20/20", line(text, "double"))
    total = line(text, "total")
    assert re.search(r"1/1", total) and "/s" not in total  # no rate for a single step


def test_threaded_map_of_nested_maps_is_saved_at_its_totals(executed):
    text = bars(executed.cells[3])
    assert re.search(r"5/5", line(text, "outer (map)"))
    assert re.search(r"20/20", line(text, "each (map)"))
    assert re.search(r"20/20", line(text, "double"))
    assert re.search(r"5/5", line(text, "total"))


def test_a_second_run_gets_its_own_display_at_its_total(executed):
    text = bars(executed.cells[4])
    assert re.search(r"60/60", line(text, "flat (map)"))


def test_async_map_on_the_kernels_loop_is_saved_at_its_totals(executed):
    text = bars(executed.cells[5])
    assert re.search(r"5/5", line(text, "outer (map)"))
    assert re.search(r"20/20", line(text, "each (map)"))
