"""0.4's names run here: SeqEngine, DualNode, @batch_optimized, @stateful, engine-level calls,
supported_engines, the executors as concurrent.futures executors, and the original's module
paths and style names."""

from __future__ import annotations

import asyncio
import concurrent.futures
import operator
import os

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from stateful_models import BUILT, Client, Scaler

from hypernodes import (
    DiskCache,
    HypernodesEngine,
    MemoryCache,
    Pipeline,
    PipelineCallback,
    Resource,
    node,
)
from hypernodes.engines import AsyncExecutor, ParallelExecutor, SequentialExecutor, ThreadedExecutor
from hypernodes.exceptions import ExecutorError, HyperNodesError, UnsupportedEngineError


class Ends(PipelineCallback):
    """Written the 0.4 way."""

    def __init__(self) -> None:
        self.ended: list[str] = []
        self.cached: list[str] = []

    def on_node_end(self, node_id, outputs, duration, ctx):
        self.ended.append(node_id)

    def on_node_cached(self, node_id, signature, ctx):
        self.cached.append(node_id)


@node(output_name="doubled")
def double(x: int) -> int:
    return 2 * x


def test_top_level_and_module_paths_of_04():
    from hypernodes.batch_adapter import batch_optimized
    from hypernodes.decorators import stateful
    from hypernodes.dual_node import DualNode

    import hypernodes
    from hypernodes.engines import SeqEngine

    assert hypernodes.SeqEngine is SeqEngine and hypernodes.DualNode is DualNode
    assert hypernodes.stateful is stateful and hypernodes.batch_optimized is batch_optimized
    assert hypernodes.HyperNodesEngine is HypernodesEngine
    assert isinstance(double, hypernodes.HyperNode)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        hypernodes.Nope  # noqa: B018


def test_seq_engine_holds_cache_and_callbacks(tmp_path):
    from hypernodes import SeqEngine

    ends = Ends()
    engine = SeqEngine(cache=DiskCache(tmp_path), callbacks=[ends])
    pipeline = Pipeline(nodes=[double], engine=engine)
    assert pipeline.run(inputs={"x": 2}) == {"doubled": 4}
    assert pipeline.run(inputs={"x": 2}) == {"doubled": 4}
    assert ends.ended == ["double"] and ends.cached == ["double"]
    # a pipeline's own cache and callbacks win over the engine's
    own = Ends()
    Pipeline([double], engine=engine, callbacks=[own], cache=MemoryCache()).run({"x": 2})
    assert own.ended == ["double"] and ends.ended == ["double"]


def test_engine_level_run_and_map():
    from hypernodes import SeqEngine

    engine = SeqEngine()
    pipeline = Pipeline([double])
    assert engine.run(pipeline, {"x": 3}) == {"doubled": 6}
    assert engine.run(pipeline, {"x": 3}, "doubled") == {"doubled": 6}
    assert engine.map(pipeline, {"x": [1, 2]}, "x") == [{"doubled": 2}, {"doubled": 4}]
    assert engine.map(pipeline, inputs={"x": [1, 2]}, map_over="x", map_mode="product") == [
        {"doubled": 2},
        {"doubled": 4},
    ]
    assert pipeline.engine is None  # the engine-level call does not change the pipeline


def test_supported_engines_is_checked_when_a_run_starts():
    from hypernodes import SeqEngine

    class SeqOnly(Ends):
        supported_engines = ("SeqEngine",)

    assert PipelineCallback().supported_engines is None
    pipeline = Pipeline([double], callbacks=[SeqOnly()])
    with pytest.raises(
        UnsupportedEngineError, match="supports the engines \\['SeqEngine'\\], not HypernodesEngine"
    ):
        pipeline.run({"x": 1})
    assert pipeline.with_engine(SeqEngine()).run({"x": 1}) == {"doubled": 2}


def test_dual_node_gets_arrow_arrays_for_mapped_inputs_and_values_for_constants():
    from hypernodes import DualNode

    seen = []

    def process_one(text: str, multiplier: int) -> int:
        return len(text) * multiplier

    def process_batch(text: pa.Array, multiplier: int) -> pa.Array:
        seen.append((type(text), multiplier))
        return pc.multiply(pc.utf8_length(text), multiplier)

    dual = DualNode(output_name="result", singular=process_one, batch=process_batch)
    assert dual.is_batch
    pipeline = Pipeline([dual])
    assert pipeline.run({"text": "abc", "multiplier": 2}) == {"result": 6}
    assert seen == []  # run calls the singular function
    rows = pipeline.map({"text": ["a", "bb", "ccc"], "multiplier": 3}, map_over="text")
    assert rows == [{"result": 3}, {"result": 6}, {"result": 9}]
    assert seen and all(kind is pa.StringArray and m == 3 for kind, m in seen)


def test_dual_node_without_annotations_and_other_parameter_names():
    from hypernodes import DualNode

    def one(x, y):
        return x + y

    def many(xs, ys):
        assert isinstance(xs, pa.Array)  # varies per item
        assert ys == 10  # the same object for every item: the constant
        return [v + ys for v in xs.to_pylist()]

    pipeline = Pipeline([DualNode("s", singular=one, batch=many)])
    assert pipeline.map({"x": [1, 2], "y": 10}, map_over="x") == [{"s": 11}, {"s": 12}]


def test_batch_optimized_class_and_function_patterns():
    from hypernodes.batch_adapter import adapt_for_hypernodes

    from hypernodes import batch_optimized

    calls = []

    @batch_optimized
    class Encoder:
        @staticmethod
        def singular(text: str) -> int:
            return len(text)

        @staticmethod
        def batch(texts: list[str]) -> list[int]:
            calls.append(len(texts))
            return [len(t) for t in texts]

    assert Encoder("abc") == 3
    pipeline = Pipeline([adapt_for_hypernodes(Encoder, "length")])
    assert pipeline.map({"text": ["a", "bb"]}, map_over="text") == [{"length": 1}, {"length": 2}]
    assert calls == [2]

    @batch_optimized
    def shout(word: str) -> str:
        return word.upper()

    assert shout.batch(["a", "b"]) == ["A", "B"]  # auto_wrap: a loop over the singular one

    @shout.batch_version
    def shout_many(words: list[str]) -> list[str]:
        return [w.upper() + "!" for w in words]

    rows = Pipeline([shout.node("loud")]).map({"word": ["a"]}, map_over="word")
    assert rows == [{"loud": "A!"}]


def test_stateful_is_lazy_built_once_per_process_and_keyed_by_init_args():
    BUILT.clear()
    model = Scaler(3)
    assert isinstance(model, Resource) and BUILT == []

    @node(output_name="y")
    def apply(x: int, model: Scaler) -> int:
        assert isinstance(model, Scaler)  # the node receives the built object
        return model.scale(x)

    calls = Ends()
    pipeline = Pipeline([apply], cache=MemoryCache(), callbacks=[calls])
    assert pipeline.map({"x": [1, 2, 3], "model": model}, map_over="x") == [
        {"y": 3},
        {"y": 6},
        {"y": 9},
    ]
    assert [os.getpid()] == BUILT
    # another handle with the same init arguments is the same cache key
    pipeline.map({"x": [1, 2, 3], "model": Scaler(3)}, map_over="x")
    assert calls.cached == ["apply"] * 3
    pipeline.map({"x": [1], "model": Scaler(4)}, map_over="x")
    assert calls.ended == ["apply"] * 4
    assert model.scale(5) == 15  # outside a node the handle forwards to the built object


def test_stateful_is_built_in_each_worker_process_once():
    @node(output_name="pids")
    def where(x: int, model: Scaler) -> tuple[int, list[int]]:
        return (os.getpid(), model.built_in())

    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        pipeline = Pipeline([where], engine=engine)
        rows = pipeline.map({"x": list(range(8)), "model": Scaler(2)}, map_over="x")
    for row in rows:
        pid, built = row["pids"]
        # built once in that worker (the list also holds what this process built before: the
        # test module travels by value, its module state with it)
        assert pid != os.getpid() and built.count(pid) == 1


def test_stateful_cache_key_method_leaves_the_token_out():
    calls = []

    @node(output_name="got")
    def fetch(path: str, client: Client) -> str:
        calls.append(path)
        return client.url + path

    pipeline = Pipeline([fetch], cache=MemoryCache())
    assert pipeline.run({"path": "/a", "client": Client("http://x", "secret-1")}) == {
        "got": "http://x/a"
    }
    pipeline.run({"path": "/a", "client": Client("http://x", "secret-2")})
    assert calls == ["/a"]  # another token, the same key
    pipeline.run({"path": "/a", "client": Client("http://y", "secret-2")})
    assert calls == ["/a", "/a"]


@pytest.mark.parametrize(
    "make",
    [SequentialExecutor, lambda: ThreadedExecutor(2), AsyncExecutor, lambda: ParallelExecutor(1)],
    ids=["sequential", "threaded", "async", "parallel"],
)
def test_executors_are_concurrent_futures_executors(make):
    with make() as executor:
        assert isinstance(executor, concurrent.futures.Executor)
        future = executor.submit(operator.add, 1, 2)
        assert isinstance(future, concurrent.futures.Future) and future.result() == 3
        assert executor.submit(sorted, [1, 3, 2], reverse=True).result() == [3, 2, 1]
        assert list(executor.map(operator.mul, [1, 2], [3, 4])) == [3, 8]
        failed = executor.submit(operator.truediv, 1, 0)
        assert isinstance(failed.exception(), ZeroDivisionError)


def test_async_executor_submit_awaits_coroutine_functions():
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    with AsyncExecutor() as executor:
        assert executor.submit(add, 2, b=3).result() == 5


def test_seed_era_async_strategy_is_accepted():
    for strategy in ("auto", "per_call", "thread_local", "async_native"):
        with HypernodesEngine(node_executor="async", async_strategy=strategy) as engine:
            assert Pipeline([double], engine=engine).run({"x": 1}) == {"doubled": 2}
    with pytest.raises(ExecutorError, match="async_strategy must be one of"):
        HypernodesEngine(async_strategy="fastest")


def test_original_style_names_and_visualize_options():
    from hypernodes import DESIGN_STYLES, GraphvizTheme, visualize

    pipeline = Pipeline([double])
    for name in ("dark_neon", "sunrise", "professional", "vibrant", "legacy", "modern", "kedro"):
        assert isinstance(DESIGN_STYLES[name], GraphvizTheme)
        svg = pipeline.visualize(style=name, return_type="svg")
        assert "<svg" in svg
    picture = visualize(pipeline, separate_outputs=True, group_inputs=False, engine="graphviz")
    assert "double" in picture.source
    # separate: the output is an ellipse of its own fed by the function, drawn once
    assert picture.source.count("doubled") == 1 and "fn1 -> val2" in picture.source
    assert "val" not in pipeline.visualize(separate_outputs=False).source
    with pytest.raises(HyperNodesError, match="unknown option 'colour'"):
        pipeline.visualize(colour="red")
    with pytest.raises(HyperNodesError, match="interactive=True"):
        pipeline.visualize(interactive=True)


def test_callback_context_answers_the_original_names():
    seen = []

    class Where(PipelineCallback):
        def on_node_start(self, node_id, inputs, ctx):
            seen.append((ctx.current_pipeline_id, ctx.parent_pipeline_id, ctx.hierarchy_path))

    inner = Pipeline([double], name="inner")
    Pipeline([inner.as_node()], callbacks=[Where()], name="outer").run({"x": 1})
    assert seen == [("inner", "outer", ["outer", "inner"])]


def test_unfulfilled_args_is_unbound_args():
    @node(output_name="s")
    def add(a: int, b: int) -> int:
        return a + b

    assert Pipeline([add]).bind(a=1).unfulfilled_args == ("b",)


def test_group_inputs_draws_the_inputs_one_node_alone_reads_in_one_box():
    @node(output_name="s")
    def add(a: int, b: int, c: int = 1) -> int:
        return a + b + c

    @node(output_name="t")
    def times(s: int, k: int, j: int) -> int:
        return s * k * j

    pipeline = Pipeline([add, times])
    grouped = pipeline.visualize(group_inputs=True).source
    # a and b (read by add alone) share a box, k and j (by times alone) another; c is optional
    assert grouped.count("shape=plain") == 4  # two input boxes, two functions
    assert 'PORT="o0">a<' in grouped and 'PORT="o1">b<' in grouped
    assert 'PORT="o0">k<' in grouped and 'PORT="o1">j<' in grouped
    assert "c<FONT" in grouped and "dashed" in grouped  # drawn on its own
    plain = pipeline.visualize().source
    assert plain.count("shape=plain") == 2
    assert "<svg" in pipeline.visualize(group_inputs=True, return_type="svg")
