"""Resources under every engine: built once per process that runs nodes reading them, never per
item, torn down when the engine shuts down (or the worker process exits)."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest
from ml_cases import counted_model, log_lines, model_pipeline

from hypernodes import HypernodesEngine

XS = [float(x) for x in range(40)]


def _check_rows(rows, scale=2.0):
    assert [row["y"] for row in rows] == [x * scale for x in XS]
    # every item ran in the process that built the model it used
    assert all(run_pid == model_pid for run_pid, model_pid in (row["where"] for row in rows))
    return {row["where"][0] for row in rows}


@pytest.mark.parametrize("executor", ["sequential", "threaded", "async"])
def test_one_build_in_this_process_and_a_teardown_at_shutdown(executor, tmp_path):
    log = str(tmp_path / "model.log")
    pipeline = model_pipeline().bind(model=counted_model(log))
    with HypernodesEngine(node_executor="threaded", map_executor=executor) as engine:
        pipeline = pipeline.with_engine(engine)
        rows = pipeline.map({"x": XS}, map_over="x")
        again = pipeline.map({"x": XS}, map_over="x")
        single = pipeline.run({"x": 1.0})
        assert log_lines(log, "close") == []  # still alive while the engine is
    assert _check_rows(rows) == {os.getpid()}
    assert again == rows
    assert single["y"] == 2.0
    assert log_lines(log, "build") == [os.getpid()]
    assert log_lines(log, "close") == [os.getpid()]


def test_a_use_after_teardown_builds_again(tmp_path):
    log = str(tmp_path / "model.log")
    pipeline = model_pipeline().bind(model=counted_model(log))
    engine = HypernodesEngine()
    pipeline.with_engine(engine).run({"x": 1.0})
    engine.shutdown()
    pipeline.with_engine(engine).run({"x": 1.0})
    engine.shutdown()
    assert log_lines(log, "build") == [os.getpid()] * 2
    assert log_lines(log, "close") == [os.getpid()] * 2


def _wait_for(predicate, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_parallel_builds_once_per_worker_process(tmp_path):
    log = str(tmp_path / "model.log")
    pipeline = model_pipeline().bind(model=counted_model(log))
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        rows = pipeline.with_engine(engine).map({"x": XS}, map_over="x")
        again = pipeline.with_engine(engine).map({"x": XS}, map_over="x")
    workers = _check_rows(rows) | _check_rows(again)
    assert os.getpid() not in workers
    builds = log_lines(log, "build")
    assert Counter(builds) == Counter(dict.fromkeys(workers, 1))  # one build per worker
    # the workers stopped with the engine and tore their models down on the way out
    assert _wait_for(lambda: sorted(log_lines(log, "close")) == sorted(builds))


def test_dask_builds_once_per_worker(dask_client, tmp_path):
    from hypernodes.engines import DaskEngine

    log = str(tmp_path / "model.log")
    pipeline = model_pipeline().bind(model=counted_model(log))
    engine = DaskEngine(client=dask_client, chunk_size=5)
    rows = pipeline.with_engine(engine).map({"x": XS}, map_over="x")
    again = pipeline.with_engine(engine).map({"x": XS}, map_over="x")
    workers = _check_rows(rows) | _check_rows(again)
    assert os.getpid() not in workers
    assert Counter(log_lines(log, "build")) == Counter(dict.fromkeys(workers, 1))


def test_daft_builds_once_per_process(tmp_path):
    pytest.importorskip("daft", reason="DaftEngine needs the daft extra: pip install -e '.[daft]'")
    from hypernodes.engines import DaftEngine

    log = str(tmp_path / "model.log")
    pipeline = model_pipeline().bind(model=counted_model(log))
    with DaftEngine(batch_size=8) as engine:
        rows = pipeline.with_engine(engine).map({"x": XS}, map_over="x")
        single = pipeline.with_engine(engine).run({"x": 3.0})
    workers = _check_rows(rows)
    assert single["y"] == 6.0
    # Daft's native runner runs its UDFs in this process: one build, torn down at shutdown
    assert workers == {os.getpid()}
    assert log_lines(log, "build") == [os.getpid()]
    assert log_lines(log, "close") == [os.getpid()]


def test_the_model_travels_as_its_recipe_under_parallel(tmp_path, monkeypatch):
    """What is sent to workers holds the recipe (bytes), never the built object."""
    import pickle

    from hypernodes.execution.remote import PlanSpec

    sent: list[bytes] = []
    original = PlanSpec.dump_items

    def recording(self, chunk, start, tokens=None):
        blob = original(self, chunk, start, tokens)
        sent.append(blob)
        return blob

    monkeypatch.setattr(PlanSpec, "dump_items", recording)
    log = str(tmp_path / "model.log")
    recipe = counted_model(log)
    pipeline = model_pipeline().bind(model=recipe)
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        pipeline.with_engine(engine).map({"x": XS}, map_over="x")
    assert sent
    for blob in sent:
        items, _tokens = pickle.loads(blob)
        for item in items:
            assert item["model"] == recipe
            assert type(item["model"]).__name__ == "Resource"
    assert log_lines(log, "build") and os.getpid() not in log_lines(log, "build")


def test_nested_pipelines_pass_the_recipe_and_build_once(tmp_path):
    from ml_cases import predict

    from hypernodes import Pipeline

    log = str(tmp_path / "model.log")
    inner = Pipeline([predict], name="inner")
    outer = Pipeline([inner.as_node(map_over="x", output_mapping={"y": "ys"})], name="outer")
    outer = outer.bind(model=counted_model(log))
    with HypernodesEngine(map_executor="threaded") as engine:
        rows = outer.with_engine(engine).map({"x": [[1.0, 2.0], [3.0]]}, map_over="x")
    assert rows == [{"ys": [2.0, 4.0]}, {"ys": [6.0]}]
    assert log_lines(log, "build") == [os.getpid()]


def test_the_log_helper_reads_what_the_factory_wrote(tmp_path):
    log = tmp_path / "model.log"
    log.write_text("build 10\nclose 10\nbuild 11\n")
    assert log_lines(log, "build") == [10, 11]
    assert log_lines(log, "close") == [10]
    assert log_lines(Path(tmp_path / "missing"), "build") == []
