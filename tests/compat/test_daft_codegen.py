"""DaftEngine.generate_code writes a standalone Daft script that computes the same rows as the
pipeline: each test runs the script in a subprocess and compares."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("daft", reason="generate_code writes Daft scripts")

from codegen_nodes import PIPELINE

from hypernodes import Pipeline, node
from hypernodes.engines import DaftEngine
from hypernodes.exceptions import HyperNodesError

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def run_script(path: Path, cwd: Path) -> object:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(SRC)])}
    done = subprocess.run(
        [sys.executable, str(path)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_map_script_computes_the_same_rows(tmp_path):
    inputs = {"text": ["  Hello ", "World", "x"], "suffix": "!"}
    code = DaftEngine.generate_code(PIPELINE, inputs, mode="map", map_over="text")
    script = tmp_path / "texts_map.py"
    script.write_text(code)
    assert run_script(script, tmp_path) == PIPELINE.map(inputs, map_over="text")
    assert "import codegen_nodes" in code


def test_run_script_computes_the_same_row(tmp_path):
    inputs = {"text": "Daft"}
    script = tmp_path / "texts_run.py"
    script.write_text(DaftEngine.generate_code(PIPELINE, inputs))
    assert run_script(script, tmp_path) == [PIPELINE.run(inputs)]


def test_functions_of_a_script_are_written_out_without_hypernodes(tmp_path):
    user = tmp_path / "user.py"
    user.write_text(
        textwrap.dedent(
            """
            from hypernodes import Pipeline, node
            from hypernodes.engines import DaftEngine

            @node(output_name="doubled")
            def double(x: int) -> int:
                return 2 * x

            pipeline = Pipeline([double])
            code = DaftEngine.generate_code(pipeline, {"x": [1, 2]}, mode="map")
            open("generated.py", "w").write(code)
            print(repr(pipeline.map({"x": [1, 2]}, map_over="x")))
            """
        )
    )
    expected = run_script(user, tmp_path)
    generated = (tmp_path / "generated.py").read_text()
    assert "hypernodes" not in generated.split('"""', 2)[2]  # only the docstring names it
    assert (
        run_script(tmp_path / "generated.py", tmp_path)
        == expected
        == [
            {"doubled": 2},
            {"doubled": 4},
        ]
    )


def test_what_the_script_cannot_compute_is_refused():
    inner = Pipeline([PIPELINE.pgraph.order[0]], name="inner")
    with pytest.raises(HyperNodesError, match="nested pipeline"):
        DaftEngine.generate_code(Pipeline([inner.as_node()]), {"text": "a"})

    @node(output_name="y", batch=True)
    def batch(x: list[int]) -> list[int]:
        return x

    with pytest.raises(HyperNodesError, match="batch node"):
        DaftEngine.generate_code(Pipeline([batch]), {"x": 1})
    with pytest.raises(HyperNodesError, match="mode must be"):
        DaftEngine.generate_code(PIPELINE, {"text": "a"}, mode="stream")
