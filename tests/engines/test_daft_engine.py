"""DaftEngine on Daft's native runner: the engine cases, lazy DataFrames, stages and the runner."""

from __future__ import annotations

import contextlib
import io
import pickle
import subprocess
import sys

import pytest

daft = pytest.importorskip("daft", reason="DaftEngine needs daft (the dev extra installs it)")

from engine_cases import CASES, XS, add_one, double, minus_three  # noqa: E402

from hypernodes import HypernodesEngine, ItemError, Pipeline, node  # noqa: E402
from hypernodes.engines import DaftEngine  # noqa: E402
from hypernodes.exceptions import ExecutorError, InvalidNodeError  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def engine():
    with DaftEngine(runner="native") as made:
        yield made


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_matches_reference(engine, case):
    assert case.run(engine) == case.expected()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_with_threaded_nodes_inside_the_udf(case):
    with DaftEngine(node_executor="threaded") as engine:
        assert case.run(engine) == case.expected()


def test_case_with_small_batches():
    # several batches per map: each carries its own events and errors
    with DaftEngine(batch_size=2) as engine:
        for case in CASES:
            assert case.run(engine) == case.expected(), case.name


# ---------------------------------------------------------------------------------------------
# Errors


@node(output_name="checked")
def refuse_seven(x: int) -> int:
    if x == 7:
        raise KeyError("seven")
    return x


def test_a_node_error_keeps_its_type_and_names_node_and_item(engine):
    pipeline = Pipeline([add_one, refuse_seven], engine=engine, name="p")
    with pytest.raises(KeyError) as info:
        pipeline.map({"x": range(20)}, map_over="x")
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'refuse_seven' of pipeline p[item 7]; inputs: x=7"
    ]


def test_a_run_error_has_no_item_index(engine):
    pipeline = Pipeline([refuse_seven], engine=engine, name="p")
    with pytest.raises(KeyError) as info:
        pipeline.run({"x": 7})
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'refuse_seven' of pipeline p; inputs: x=7"
    ]


def test_on_error_continue_gives_item_errors(engine):
    pipeline = Pipeline([refuse_seven, add_one], engine=engine, name="p")
    rows = pipeline.map({"x": [6, 7, 8]}, map_over="x", on_error="continue")
    assert rows[0] == {"checked": 6, "a": 7} and rows[2] == {"checked": 8, "a": 9}
    error = rows[1]["checked"]
    assert isinstance(error, ItemError) and error.index == 1 and error.node == "refuse_seven"
    assert isinstance(error.exception, KeyError) and rows[1]["a"] == 8


def test_imap_yields_numbered_rows_then_raises_at_the_failing_item(engine):
    pipeline = Pipeline([add_one, refuse_seven], name="p")
    plan = pipeline.plan(None, frozenset({"x"}))
    items = [{"x": x} for x in [5, 6, 7, 8]]
    seen = []
    with pytest.raises(KeyError):
        for index, row in engine.imap(plan, items, 4, pipeline._root_context()):
            seen.append((index, row))
    assert seen == [(0, {"a": 6, "checked": 5}), (1, {"a": 7, "checked": 6})]
    assert list(engine.imap(plan, [], 0, pipeline._root_context())) == []


def test_a_node_that_cannot_be_pickled_is_named(engine):
    import threading

    from hypernodes.exceptions import UnpicklableError

    lock = threading.Lock()

    @node(output_name="held")
    def holds_a_lock(x: int) -> bool:
        with lock:
            return True

    with pytest.raises(UnpicklableError, match="holds_a_lock"):
        Pipeline([holds_a_lock], engine=engine).map({"x": [1, 2]}, map_over="x")


def test_unknown_on_error_is_refused(engine):
    from hypernodes.exceptions import MapError

    plan = Pipeline([add_one]).plan(None, frozenset({"x"}))
    with pytest.raises(MapError, match="on_error"):
        engine.map(plan, [{"x": 1}], 1, Pipeline([add_one])._root_context(), on_error="skip")


# ---------------------------------------------------------------------------------------------
# collect=False


@node(output_name="word")
def spell(x: int) -> str:
    return "x" * x


@node(output_name=("half", "rest"))
def halve(x: int) -> tuple[int, int]:
    return divmod(x, 2)


@node(output_name="bag")
def bag(x: int):
    return {"x": x}


def test_collect_false_returns_a_lazy_dataframe_of_inputs_and_outputs():
    pipeline = Pipeline([add_one, spell, halve, bag], engine=DaftEngine(collect=False))
    frame = pipeline.map({"x": XS}, map_over="x")
    assert isinstance(frame, daft.DataFrame)
    columns = frame.to_pydict()
    assert list(columns) == ["x", "a", "word", "half", "rest", "bag"]
    rows = Pipeline([add_one, spell, halve, bag]).map({"x": XS}, map_over="x")
    for name in ["a", "word", "half", "rest", "bag"]:
        assert columns[name] == [row[name] for row in rows]
    assert columns["x"] == XS
    same = pipeline.map({"x": XS}, map_over="x", return_format="columns")
    assert isinstance(same, daft.DataFrame) and same.to_pydict() == columns
    schema = {field.name: str(field.dtype) for field in frame.schema()}
    # annotated plain types become Daft types (Parquet-ready); the rest stay Python objects
    assert schema["a"] == "Int64" and schema["word"] == "String" and schema["half"] == "Int64"
    assert schema["bag"] == "Python"


def test_collect_false_dataframe_chains_daft_operations(tmp_path):
    pipeline = Pipeline([add_one, double], engine=DaftEngine(collect=False))
    frame = pipeline.map({"x": list(range(10))}, map_over="x")
    big = frame.where(frame["b"] > 10).select("x", "b")
    assert big.to_pydict() == {"x": [5, 6, 7, 8, 9], "b": [12, 14, 16, 18, 20]}
    frame.write_parquet(str(tmp_path / "out"))
    assert daft.read_parquet(str(tmp_path / "out")).sort("x").to_pydict()["b"] == [
        2 * (x + 1) for x in range(10)
    ]


def test_collect_false_run_and_nested_maps_still_return_dicts():
    inner = Pipeline([double], engine=DaftEngine(collect=False), name="inner")
    outer = Pipeline([inner.as_node(map_over="a", name="each")])
    assert outer.run({"a": [1, 2]}) == {"b": [2, 4]}
    assert Pipeline([add_one], engine=DaftEngine(collect=False)).run({"x": 1}) == {"a": 2}


def test_collect_false_surfaces_a_node_error_when_collected():
    frame = Pipeline([refuse_seven], engine=DaftEngine(collect=False)).map(
        {"x": [1, 7]}, map_over="x"
    )
    with pytest.raises(Exception, match="seven"):
        frame.to_pydict()


@node(output_name="n")
def says_many(x: int) -> int:
    return "many" if x == 2 else x  # type: ignore[return-value]


def test_a_value_that_does_not_fit_its_annotated_column_is_an_error_not_a_null():
    frame = Pipeline([says_many], engine=DaftEngine(collect=False)).map(
        {"x": [1, 2, 3]}, map_over="x"
    )
    with pytest.raises(Exception, match=r"output 'n' is annotated as a Daft Int64.*'many'"):
        frame.to_pydict()


# ---------------------------------------------------------------------------------------------
# Stages and resources


@node(output_name="scored", resources={"num_cpus": 1, "batch_size": 4})
def score(b: int) -> int:
    return b + 1000


@node(output_name="final")
def finish(scored: int, a: int) -> int:
    return scored - a


def staged() -> list:
    return [add_one, double, score, finish]


def test_a_node_with_resources_is_a_stage_of_its_own_in_the_plan():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rows = Pipeline(staged(), engine=DaftEngine(show_plan=True)).map({"x": XS}, map_over="x")
    assert rows == Pipeline(staged()).map({"x": XS}, map_over="x")
    plan = out.getvalue()
    assert "stage0[add_one, double]" in plan
    assert "stage1[score]" in plan and "stage2[finish]" in plan
    assert "batch_size = 4" in plan and "num_cpus = 1" in plan  # its UDF options
    for output in ["a", "b", "scored", "final"]:
        assert f"as {output}" in plan  # each output is its own column


def test_without_resources_the_whole_plan_is_one_udf():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        Pipeline([add_one, double, minus_three], engine=DaftEngine(show_plan=True)).map(
            {"x": XS}, map_over="x"
        )
    assert "stage0[add_one, double, minus_three]" in out.getvalue()
    assert "stage1" not in out.getvalue()


@node(output_name="safe")
def safe(x: int) -> int:
    return -x


@node(output_name="boosted", resources={"max_concurrency": 1})
def boost(checked: int) -> int:
    return checked * 100


@node(output_name="after")
def after(boosted: int, safe: int) -> int:
    return boosted + safe


def test_stages_with_on_error_continue_compute_what_does_not_depend_on_the_failure():
    nodes = [refuse_seven, safe, boost, after, add_one]
    rows = Pipeline(nodes, engine=DaftEngine()).map(
        {"x": [6, 7, 8]}, map_over="x", on_error="continue"
    )
    reference = Pipeline(nodes).map({"x": [6, 7, 8]}, map_over="x", on_error="continue")
    assert [r for i, r in enumerate(rows) if i != 1] == [
        r for i, r in enumerate(reference) if i != 1
    ]
    failed = rows[1]
    assert failed["safe"] == -7 and failed["a"] == 8
    for name in ["checked", "boosted", "after"]:
        assert isinstance(failed[name], ItemError) and failed[name].node == "refuse_seven"
        assert failed[name].index == 1


def test_stages_raise_the_first_failing_item():
    # refuse_seven runs in the stage after score: item 6 (a == 7) fails there
    nodes = [add_one, double, score, refuse_seven.with_inputs(x="a")]
    late = Pipeline(nodes, engine=DaftEngine(), name="p")
    with pytest.raises(KeyError) as info:
        late.map({"x": range(10)}, map_over="x")
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'refuse_seven' of pipeline p[item 6]; inputs: a=7"
    ]
    # a failing node with resources, in small batches: the lowest failing item wins
    picky = node(output_name="checked", resources={"num_cpus": 1})(refuse_seven.func)
    early = Pipeline([add_one, picky.with_inputs(x="a"), finish.with_inputs(scored="checked")])
    with pytest.raises(KeyError) as info:
        early.with_engine(DaftEngine(batch_size=3)).map({"x": [6, 1, 6, 6]}, map_over="x")
    assert "pipeline[item 0]" in info.value.__notes__[0]


def test_resources_are_validated_stored_shown_and_ignored_by_the_local_engine():
    @node(output_name="y", resources={"num_gpus": 0.5, "max_concurrency": 2})
    def gpu_work(x: int) -> int:
        return x * 2

    assert gpu_work.resources == {"num_gpus": 0.5, "max_concurrency": 2}
    assert "resources={'num_gpus': 0.5, 'max_concurrency': 2}" in repr(gpu_work)
    assert gpu_work.with_inputs(x="z").resources == gpu_work.resources
    assert gpu_work.with_output("w").resources == gpu_work.resources
    assert Pipeline([gpu_work]).map({"x": [1, 2]}, map_over="x") == [{"y": 2}, {"y": 4}]
    assert node(lambda x: x, output_name="v").resources is None
    for bad, message in [
        ({"gpus": 1}, "unknown resource 'gpus'"),
        ({"num_gpus": -1}, "a number >= 0"),
        ({"batch_size": 0}, "a whole number >= 1"),
        ({"max_concurrency": 1.5}, "a whole number >= 1"),
        ({"num_cpus": True}, "a number >= 0"),
        ([("num_gpus", 1)], "must be a dict"),
    ]:
        with pytest.raises(InvalidNodeError, match=message):
            node(output_name="v", resources=bad)(lambda x: x)


# ---------------------------------------------------------------------------------------------
# The engine itself


def test_inside_a_udf_the_engine_is_a_local_engine_with_the_same_node_executor():
    copy = pickle.loads(pickle.dumps(DaftEngine(node_executor="threaded")))
    assert isinstance(copy, HypernodesEngine)
    assert type(copy._node).__name__ == "ThreadedExecutor"


def test_copies_of_the_engine_are_daft_engines_with_the_same_settings():
    import copy

    engine = DaftEngine(collect=False, batch_size=7, node_executor="threaded")
    for made in (copy.copy(engine), copy.deepcopy(engine)):
        assert isinstance(made, DaftEngine) and made is not engine
        assert (made.collect, made.batch_size, made.node_executor) == (False, 7, "threaded")


def test_options_are_checked():
    with pytest.raises(ExecutorError, match="runner"):
        DaftEngine(runner="spark")
    with pytest.raises(ExecutorError, match="ray_address"):
        DaftEngine(ray_address="ray://example:10001")
    with pytest.raises(ExecutorError, match="batch_size"):
        DaftEngine(batch_size=0)
    with pytest.raises(ExecutorError, match="node_executor='parallel'"):
        DaftEngine(node_executor="parallel")


def test_a_conflicting_runner_is_a_clear_error(engine):
    Pipeline([add_one], engine=engine).run({"x": 1})  # the native runner is now fixed
    with pytest.raises(ExecutorError, match="already runs on its 'native' runner"):
        Pipeline([add_one], engine=DaftEngine(runner="ray")).run({"x": 1})
    # runner=None takes the runner that is set
    assert Pipeline([add_one], engine=DaftEngine()).run({"x": 1}) == {"a": 2}


def test_importing_the_engines_does_not_import_daft():
    code = (
        "import sys; from hypernodes.engines import HypernodesEngine; "
        "assert 'daft' not in sys.modules; "
        "from hypernodes.engines import DaftEngine; assert 'daft' not in sys.modules; "
        "DaftEngine(); assert 'daft' not in sys.modules; print('lazy')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "lazy", done.stderr


def test_a_missing_daft_is_a_clear_error(monkeypatch):
    import importlib.util

    from hypernodes.engines import daft as module

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "daft" else real(name, *a)
    )
    with pytest.raises(ImportError, match=r"pip install \"hypernodes\[daft\]\""):
        module.DaftEngine()
