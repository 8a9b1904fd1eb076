"""``hypernodes serve``: a real server process on 127.0.0.1 and a free port, called with a real
HTTP client, stopped by the test (its worker processes with it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="serving needs the serve extra: pip install -e '.[serve]'")
pytest.importorskip("uvicorn", reason="serving needs the serve extra: pip install -e '.[serve]'")
psutil = pytest.importorskip("psutil", reason="the test checks that no process outlives it")
requests = pytest.importorskip("requests", reason="the HTTP client of these tests")

pytestmark = pytest.mark.timeout(120)

TARGET = """
import asyncio

from hypernodes import HypernodesEngine, Pipeline, node


@node(output_name="y")
def scale(x: int, k: int = 2) -> int:
    if x == 3:
        raise ValueError("three is not welcome")
    return x * k


@node(output_name="label")
async def label(y: int) -> str:
    await asyncio.sleep(0)
    return f"y={{y}}"


pipeline = Pipeline([scale, label], name="demo", engine={engine})
"""

ENGINES = {
    "sequential": "None",
    "threaded": 'HypernodesEngine(map_executor="threaded", max_workers=2)',
    "parallel": 'HypernodesEngine(map_executor="parallel", max_workers=2)',
}


@pytest.fixture(scope="module", params=list(ENGINES))
def server(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a ``hypernodes serve`` process (one per engine), stopped after the tests."""
    tmp_path = tmp_path_factory.mktemp("serve")
    module = tmp_path / "served.py"
    module.write_text(textwrap.dedent(TARGET.format(engine=ENGINES[request.param])))
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "hypernodes", "serve", f"{module}:pipeline", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root / "src")},
    )
    try:
        line = process.stderr.readline()  # type: ignore[union-attr]
        assert line.startswith("serving 'demo' on http://127.0.0.1:"), line
        url = line.split(" on ", 1)[1].strip()
        yield url
        children = psutil.Process(process.pid).children(recursive=True)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise
    # uvicorn shuts down gracefully, then re-raises the signal it caught
    assert process.returncode in (0, -signal.SIGTERM), process.stderr.read()  # type: ignore[union-attr]
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"processes outlived the server: {alive}"


def test_run(server):
    answer = requests.post(f"{server}/run", json={"inputs": {"x": 4}}, timeout=30)
    assert answer.status_code == 200
    assert answer.json() == {"outputs": {"y": 8, "label": "y=8"}}
    only = requests.post(
        f"{server}/run", json={"inputs": {"x": 1, "k": 5}, "output_name": "y"}, timeout=30
    )
    assert only.json() == {"outputs": {"y": 5}}


def test_map_and_its_item_errors(server):
    body = {"inputs": {"x": [1, 2, 3], "k": 10}, "map_over": "x", "on_error": "continue"}
    rows = requests.post(f"{server}/map", json=body, timeout=60).json()["rows"]
    assert rows[:2] == [{"y": 10, "label": "y=10"}, {"y": 20, "label": "y=20"}]
    failed = rows[2]["y"]
    assert (failed["error"], failed["node"], failed["item"]) == ("ValueError", "scale", 2)
    assert failed["message"] == "three is not welcome" and rows[2]["label"] == failed


def test_node_errors_answer_json_with_node_and_item(server):
    answer = requests.post(f"{server}/run", json={"inputs": {"x": 3}}, timeout=30)
    assert answer.status_code == 500
    error = answer.json()
    assert (error["error"], error["node"], error["path"], error["item"]) == (
        "ValueError",
        "scale",
        ["demo"],
        None,
    )
    assert error["notes"] == [
        "hypernodes: raised by node 'scale' of pipeline demo; inputs: x=3, k=2"
    ]
    body = {"inputs": {"x": [5, 3]}, "map_over": "x"}
    mapped = requests.post(f"{server}/map", json=body, timeout=60)
    assert mapped.status_code == 500 and mapped.json()["item"] == 1


def test_request_errors(server):
    unknown = requests.post(f"{server}/run", json={"inputs": {"x": 1, "kk": 2}}, timeout=30)
    assert unknown.status_code == 422
    assert {"extra_forbidden", "missing"} >= {d["type"] for d in unknown.json()["detail"]}
    wrong = requests.post(
        f"{server}/run", json={"inputs": {"x": 1}, "output_name": "nope"}, timeout=30
    )
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "UnknownOutputError" and "'nope'" in wrong.json()["message"]


def test_openapi_schemas_come_from_the_annotations(server):
    spec = requests.get(f"{server}/openapi.json", timeout=30).json()
    assert set(spec["paths"]) == {"/run", "/map", "/health"}
    schemas = spec["components"]["schemas"]
    inputs = schemas["DemoInputs"]
    assert inputs["required"] == ["x"]
    assert inputs["properties"]["x"]["type"] == "integer"
    assert inputs["additionalProperties"] is False
    outputs = schemas["DemoOutputs"]["properties"]
    assert {"type": "integer"} in outputs["y"]["anyOf"]
    assert {"type": "string"} in outputs["label"]["anyOf"]
    assert requests.get(f"{server}/health", timeout=30).json() == {"status": "ok"}
