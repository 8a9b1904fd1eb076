"""Variants: several nodes produce one output, each naming its ``variant=``; a pipeline runs the
default or the one ``with_variants`` picks, under every engine, with its own cache entries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from engine_kinds import KINDS

from hypernodes import DiskCache, Pipeline, node
from hypernodes.exceptions import InvalidNodeError, VariantError

pytestmark = pytest.mark.timeout(180)

XS = [1, 2, 3]


@node(output_name="model", variant="ridge", variant_default=True)
def ridge(x: int, log: str) -> str:
    with open(log, "a") as out:
        out.write("ridge\n")
    return f"ridge({x})"


@node(output_name="model", variant="lasso")
def lasso(x: int, log: str) -> str:
    with open(log, "a") as out:
        out.write("lasso\n")
    return f"lasso({x})"


@node(output_name="size")
def size(model: str) -> int:
    return len(model)


@node(output_name=("lo", "hi"), variant="narrow")
def narrow(x: int) -> tuple[int, int]:
    return x - 1, x + 1


@node(output_name=("lo", "hi"), variant="wide")
def wide(x: int) -> tuple[int, int]:
    return x - 10, x + 10


def calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.mark.parametrize("kind", KINDS)
def test_default_and_chosen_variants_with_their_own_cache_entries(engine, kind, tmp_path):
    log = tmp_path / "log"
    pipeline = Pipeline(
        [ridge, lasso, size], engine=engine, cache=DiskCache(tmp_path / "cache"), name="fit"
    )
    inputs = {"x": XS, "log": str(log)}
    assert pipeline.map(inputs, map_over="x", output_name="model") == [
        {"model": f"ridge({x})"} for x in XS
    ]
    chosen = pipeline.with_variants(model="lasso")
    assert chosen.map(inputs, map_over="x", output_name="model") == [
        {"model": f"lasso({x})"} for x in XS
    ]
    assert sorted(calls(log)) == ["lasso"] * 3 + ["ridge"] * 3
    # each variant is served from its own entries, never the other's
    assert pipeline.map(inputs, map_over="x")[0] == {"model": "ridge(1)", "size": 8}
    assert chosen.map(inputs, map_over="x")[0] == {"model": "lasso(1)", "size": 8}
    assert len(calls(log)) == 6
    assert pipeline.variants == {"model": {"variants": ["ridge", "lasso"], "chosen": "ridge"}}
    assert chosen.variants["model"]["chosen"] == "lasso"


@pytest.mark.parametrize("kind", KINDS)
def test_without_a_default_the_error_lists_the_choices(engine, kind):
    pipeline = Pipeline([narrow, wide], engine=engine, name="bounds")
    with pytest.raises(VariantError, match=r"2 variants of \('hi', 'lo'\): 'narrow', 'wide'"):
        pipeline.map({"x": XS}, map_over="x")
    rows = pipeline.with_variants(lo="wide").map({"x": XS}, map_over="x")
    assert rows == [{"lo": x - 10, "hi": x + 10} for x in XS]


def test_refused_variants():
    with pytest.raises(VariantError, match="both variant 'ridge'"):
        Pipeline([ridge, ridge.with_inputs(log="other")])
    twice = node(output_name="model", variant="lasso", variant_default=True)(lambda x, log: x)
    with pytest.raises(VariantError, match="both marked variant_default=True"):
        Pipeline([ridge, twice])
    other = node(output_name=("model", "extra"), variant="big")(lambda x: (x, x))
    with pytest.raises(VariantError, match="must produce the same outputs"):
        Pipeline([ridge, other])
    pipeline = Pipeline([ridge, lasso], name="fit")
    with pytest.raises(VariantError, match="no variant 'elastic' of 'model'; its variants are"):
        pipeline.with_variants(model="elastic")
    with pytest.raises(VariantError, match="no variants of 'size'"):
        pipeline.with_variants(size="ridge")
    with pytest.raises(VariantError, match="has no variant nodes"):
        Pipeline([size]).with_variants(model="ridge")
    with pytest.raises(InvalidNodeError, match="variant_default=True needs variant="):
        node(output_name="y", variant_default=True)(lambda x: x)


def test_undecided_variants_stop_slicing_and_patching_too():
    pipeline = Pipeline([narrow, wide], name="bounds")
    with pytest.raises(VariantError):
        pipeline.subpipeline(outputs="lo")
    with pytest.raises(VariantError):
        pipeline.with_node_function("narrow", lambda x: (0, 0))
    chosen = pipeline.with_variants(hi="narrow").with_node_function("narrow", lambda x: (0, 0))
    assert chosen.run({"x": 5}) == {"lo": 0, "hi": 0}


def test_describe_shows_the_chosen_variant(tmp_path):
    module = tmp_path / "fits.py"
    module.write_text(
        "from hypernodes import Pipeline, node\n"
        "@node(output_name='model', variant='ridge', variant_default=True)\n"
        "def ridge(x: int) -> str:\n    return 'r'\n"
        "@node(output_name='model', variant='lasso')\n"
        "def lasso(x: int) -> str:\n    return 'l'\n"
        "fit = Pipeline([ridge, lasso], name='fit')\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {"PYTHONPATH": str(root / "src"), "PATH": ""}
    command = [sys.executable, "-m", "hypernodes", "describe", f"{module}:fit"]
    text = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert text.returncode == 0, text.stderr
    assert "variants of model: ridge (chosen), lasso" in text.stdout
    assert "ridge(x: int) -> model: str" in text.stdout and "lasso(" not in text.stdout
    data = subprocess.run([*command, "--format", "json"], capture_output=True, text=True, env=env)
    assert json.loads(data.stdout)["variants"] == {
        "model": {"variants": ["ridge", "lasso"], "chosen": "ridge"}
    }
