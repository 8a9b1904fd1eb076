"""A batch node in the middle of a per-item pipeline gives the rows of its per-item twin under every
engine and executor, with the same callback events per item, per-item cache entries and the
documented error policy (a failing batch fails its items)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from ml_cases import (
    batch_pipeline,
    bounds_batch,
    embed_batch,
    fragile_batch,
    item_pipeline,
    prepare,
    sized_batch,
    width,
)

from hypernodes import HypernodesEngine, ItemError, MemoryCache, Pipeline
from hypernodes.model.resources import Resource

XS = list(range(23))

LOCAL = [
    ("sequential", "sequential"),
    ("sequential", "threaded"),
    ("threaded", "threaded"),
    ("sequential", "async"),
    ("async", "async"),
    ("sequential", "parallel"),
]


def _engines(dask_client=None):
    for node_executor, map_executor in LOCAL:
        yield (
            f"{node_executor}/{map_executor}",
            HypernodesEngine(
                node_executor=node_executor, map_executor=map_executor, max_workers=2, batch_size=5
            ),
        )


@pytest.fixture(params=[f"{n}/{m}" for n, m in LOCAL] + ["dask", "daft"])
def engine(request):
    name = request.param
    if name == "dask":
        from hypernodes.engines import DaskEngine

        made = DaskEngine(client=request.getfixturevalue("dask_client"), chunk_size=7)
    elif name == "daft":
        pytest.importorskip("daft", reason="DaftEngine needs the daft extra")
        from hypernodes.engines import DaftEngine

        made = DaftEngine(batch_size=6)
    else:
        node_executor, map_executor = name.split("/")
        made = HypernodesEngine(
            node_executor=node_executor, map_executor=map_executor, max_workers=2, batch_size=5
        )
    yield made
    made.shutdown()


def test_same_rows_as_the_per_item_twin(engine):
    expected = item_pipeline().map({"x": XS}, map_over="x")
    assert batch_pipeline().with_engine(engine).map({"x": XS}, map_over="x") == expected
    columns = (
        batch_pipeline()
        .with_engine(engine)
        .map({"x": XS}, map_over="x", return_format="columns", output_name="c")
    )
    assert columns == {"c": [row["c"] for row in expected]}
    assert batch_pipeline().with_engine(engine).run({"x": 4}) == item_pipeline().run({"x": 4})


def test_imap_streams_the_same_rows(engine):
    expected = item_pipeline().map({"x": XS}, map_over="x")
    pairs = list(batch_pipeline().with_engine(engine).imap({"x": XS}, map_over="x"))
    assert pairs == list(enumerate(expected))


def test_tuple_outputs_of_a_batch_node(engine):
    pipeline = Pipeline([prepare, bounds_batch, width], engine=engine)
    rows = pipeline.map({"x": XS}, map_over="x")
    assert [(r["lo"], r["hi"], r["width"]) for r in rows] == [(x - 0.5, x + 1.5, 2.0) for x in XS]


def test_a_failing_batch_fails_its_items_under_continue(engine):
    pipeline = Pipeline([prepare, fragile_batch], engine=engine).bind(factor=2.0)
    rows = pipeline.map({"x": XS}, map_over="x", on_error="continue")
    failed = [i for i, row in enumerate(rows) if isinstance(row["b"], ItemError)]
    assert 4 in failed  # the culprit, and the items batched with it
    assert all(isinstance(rows[i]["b"].exception, ValueError) for i in failed)
    assert all(rows[i]["b"].index == i for i in failed)
    assert len(failed) < len(XS)
    for i, row in enumerate(rows):
        assert row["a"] == i + 0.5  # the per-item node ran for every item
        if i not in failed:
            assert row["b"] == (i + 0.5) * 2.0


def test_a_failing_batch_raises_under_raise_with_its_first_item(engine):
    pipeline = Pipeline([prepare, fragile_batch], engine=engine).bind(factor=2.0)
    with pytest.raises(ValueError, match="x=4") as info:
        pipeline.map({"x": XS}, map_over="x")
    notes = " ".join(info.value.__notes__)
    assert "fragile_batch" in notes and "[item " in notes


def test_batch_nodes_reading_a_resource(engine, tmp_path):
    from ml_cases import counted_model, log_lines

    log = str(tmp_path / "model.log")
    pipeline = Pipeline([prepare, embed_batch], engine=engine).bind(model=counted_model(log))
    rows = pipeline.map({"x": XS}, map_over="x", output_name="emb")
    assert rows == [{"emb": (x + 0.5) * 2.0} for x in XS]
    builds = Counter(log_lines(log, "build"))
    assert builds and set(builds.values()) == {1}


def test_batch_size_hint_sets_the_batches(tmp_path):
    log = tmp_path / "sizes.log"
    pipeline = Pipeline([prepare, sized_batch]).bind(factor=1.0, log=str(log))
    for name, engine in _engines():
        log.write_text("")
        with engine:
            rows = pipeline.with_engine(engine).map({"x": XS}, map_over="x", output_name="b")
        assert rows == [{"b": x + 0.5} for x in XS], name
        sizes = [int(line.split()[1]) for line in log.read_text().splitlines()]
        assert sum(sizes) == len(XS) and max(sizes) == 4, (name, sizes)


def test_daft_runs_a_batch_node_as_a_batch_udf_stage(tmp_path):
    pytest.importorskip("daft", reason="DaftEngine needs the daft extra")
    from hypernodes.engines import DaftEngine
    from hypernodes.engines.daft import layout

    pipeline = Pipeline([prepare, sized_batch]).bind(factor=1.0, log=str(tmp_path / "sizes.log"))
    plan = pipeline.plan(None, frozenset({"x", "factor", "log"}))
    stages = layout(plan, ("x",), "pipeline")
    assert [s.label for s in stages] == ["[prepare]", "[sized_batch]"]
    assert stages[1].resources == {"batch_size": 4}
    with DaftEngine() as engine:
        rows = pipeline.with_engine(engine).map({"x": XS}, map_over="x", output_name="b")
    assert rows == [{"b": x + 0.5} for x in XS]
    sizes = [
        int(line.split()[1])
        for line in Path(tmp_path / "sizes.log").read_text().split("\n")
        if line
    ]
    assert max(sizes) == 4 and sum(sizes) == len(XS)
    assert {int(line.split()[0]) for line in (tmp_path / "sizes.log").read_text().splitlines()} == {
        os.getpid()
    }


def test_cache_entries_stay_per_item():
    cache = MemoryCache()
    batched = batch_pipeline().with_cache(cache)
    first = batched.map({"x": XS[:10]}, map_over="x")
    with HypernodesEngine(map_executor="threaded", batch_size=4) as engine:
        more = batched.with_engine(engine).map({"x": XS}, map_over="x")
    assert more[:10] == first
    # a one-item run of the batch node finds the entry its batch wrote
    from ml_cases import scale_batch

    assert scale_batch.is_batch
    expected = item_pipeline().map({"x": XS}, map_over="x")
    assert more == expected


def test_run_calls_a_batch_node_with_one_element_lists():
    seen = []

    from hypernodes import node

    @node(output_name="n", batch=True)
    def sizes(x: list[int], model: object) -> list[int]:
        seen.append((list(x), type(model).__name__))
        return [len(x)] * len(x)

    pipeline = Pipeline([sizes]).bind(model=Resource(dict))
    assert pipeline.run({"x": 5}) == {"n": 1}
    assert seen == [([5], "dict")]


@pytest.mark.parametrize("executor", ["sequential", "async", "threaded"])
def test_amap_and_unordered_imap_of_a_batched_pipeline(executor):
    import asyncio

    expected = item_pipeline().map({"x": XS}, map_over="x")
    with HypernodesEngine(map_executor=executor, batch_size=4) as engine:
        pipeline = batch_pipeline().with_engine(engine)
        rows = asyncio.run(pipeline.amap({"x": XS}, map_over="x"))
        unordered = dict(pipeline.imap({"x": XS}, map_over="x", ordered=False))
    assert rows == expected
    assert [unordered[i] for i in range(len(XS))] == expected
