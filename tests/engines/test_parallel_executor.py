"""The parallel map: pickling of nodes (module-level, local, ``__main__``), chunking, errors that
say what cannot be pickled, the ProcessPoolExecutor fallback, nesting inside workers, crashes."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from engine_cases import add_one, double, minus_three, neighbours, picky, triple

from hypernodes import HypernodesEngine, ItemError, Pipeline, node
from hypernodes.engines import ParallelExecutor
from hypernodes.exceptions import ExecutorError, UnpicklableError, WorkerCrashedError
from hypernodes.execution import remote

pytestmark = pytest.mark.timeout(90)

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def engine():
    with HypernodesEngine(map_executor="parallel", max_workers=2) as made:
        yield made


@node(output_name="pid")
def pid_of(x: int) -> int:
    return os.getpid()


def test_a_module_level_node_pickles_by_reference():
    assert pickle.loads(pickle.dumps(add_one)) is add_one
    renamed = add_one.with_inputs(x="n").with_output("m")
    copy = pickle.loads(pickle.dumps(renamed))
    assert copy is not renamed and copy.func is add_one.func
    assert (copy.inputs, copy.outputs) == (("n",), ("m",))


def test_local_functions_and_closures_run_in_workers(engine):
    offset = 1000

    @node(output_name="shifted")
    def shift(x: int) -> int:
        return x + offset

    square = node(lambda shifted: shifted * shifted, output_name="squared")
    rows = Pipeline([shift, square], engine=engine).map({"x": [1, 2]}, map_over="x")
    assert rows == [{"shifted": 1001, "squared": 1001**2}, {"shifted": 1002, "squared": 1002**2}]


def test_a_module_the_workers_cannot_import_travels_by_value(engine, tmp_path, monkeypatch):
    """A module loaded from a file that is not on sys.path (as a notebook or a runner might):
    the workers could not import it by name, so its nodes and classes travel by value."""
    import importlib.util

    source = tmp_path / "loose_steps.py"
    source.write_text(
        textwrap.dedent(
            """
            from hypernodes import node

            class Box:
                def __init__(self, value):
                    self.value = value

            @node(output_name="box")
            def boxed(x: int) -> Box:
                return Box(x * 7)
            """
        ),
        encoding="utf-8",
    )
    spec = importlib.util.spec_from_file_location("loose_steps_for_parallel", source)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    rows = Pipeline([module.boxed], engine=engine).map({"x": [1, 2, 3]}, map_over="x")
    assert [type(row["box"]) for row in rows] == [module.Box] * 3  # the caller's class
    assert [row["box"].value for row in rows] == [7, 14, 21]
    assert pickle.loads(pickle.dumps(module.boxed)) is module.boxed  # by reference elsewhere


@node(output_name="pid")
def pid_met(x: int, folder: str, deadline: float) -> int:
    """Sign in ``folder`` with this process's pid, then wait until two processes have signed
    (or ``deadline``): one worker cannot take every item before the other starts, however busy
    the machine, unless the map never gives the second worker any."""
    here = Path(folder)
    (here / str(os.getpid())).touch()
    while len(list(here.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.01)
    return os.getpid()


def test_items_are_spread_over_worker_processes(engine, tmp_path):
    inputs = {"x": range(64), "folder": str(tmp_path), "deadline": time.time() + 30}
    rows = Pipeline([pid_met], engine=engine).map(inputs, map_over="x")
    pids = {row["pid"] for row in rows}
    assert os.getpid() not in pids and len(pids) == 2
    assert {int(p.name) for p in tmp_path.iterdir()} == pids


def test_many_small_items_travel_in_few_chunks(engine, monkeypatch):
    chunks: list[int] = []
    dump = remote.PlanSpec.dump_items

    def counting_dump(self, chunk, start, tokens=None):
        chunks.append(len(chunk))
        return dump(self, chunk, start, tokens)

    monkeypatch.setattr(remote.PlanSpec, "dump_items", counting_dump)
    pipeline = Pipeline([add_one, double, minus_three], engine=engine)
    rows = pipeline.map({"x": range(10_000)}, map_over="x")
    assert [row["c"] for row in rows] == [(x + 1) * 2 - 3 for x in range(10_000)]
    assert sum(chunks) == 10_000 and len(chunks) <= 16


def test_item_index_of_a_failure_counts_across_chunks(engine):
    pipeline = Pipeline([picky], engine=engine, name="p")
    with pytest.raises(ValueError, match="no multiples of four: 1500") as info:
        pipeline.map({"x": [1] * 1499 + [1500] + [1] * 500}, map_over="x")
    assert info.value.__notes__ == [
        "hypernodes: raised by node 'picky' of pipeline p[item 1499]; inputs: x=1500"
    ]


def test_unpicklable_node_names_the_node_and_what_to_do(engine):
    lock = threading.Lock()

    @node(output_name="guarded")
    def guarded(x: int) -> int:
        with lock:
            return x

    inner = Pipeline([guarded], name="inner").as_node(name="wrapper")
    for nodes, where in (([guarded], "'guarded'"), ([add_one, inner], "'wrapper > guarded'")):
        with pytest.raises(UnpicklableError) as info:
            Pipeline(nodes, engine=engine).map({"x": [1, 2]}, map_over="x")
        message = str(info.value)
        assert f"node {where}" in message
        assert "lock" in message and "map_executor='threaded'" in message


def test_unpicklable_input_names_the_input_and_item(engine):
    pipeline = Pipeline([add_one.with_inputs(x="handle")], engine=engine)
    with pytest.raises(UnpicklableError, match=r"input 'handle' of map item 1 .*threaded"):
        pipeline.map({"handle": [1, threading.Lock(), 3]}, map_over="handle")


def test_unpicklable_output_names_the_output_and_item(engine):
    @node(output_name="made")
    def make(x: int):
        return threading.Lock() if x == 2 else x

    with pytest.raises(UnpicklableError, match=r"output 'made' of map item 2 .*sent back"):
        Pipeline([make], engine=engine).map({"x": [0, 1, 2]}, map_over="x")


def test_a_nested_parallel_map_runs_inside_the_worker(engine):
    @node(output_name="where")
    def where(v: int) -> int:
        return os.getpid()

    inner = Pipeline([triple, where], name="inner").as_node(
        input_mapping={"xs": "v"}, output_mapping={"y": "ys", "where": "pids"}, map_over="xs"
    )
    outer = Pipeline([neighbours, inner, pid_of], engine=engine, name="outer")
    rows = outer.map({"x": range(6)}, map_over="x")
    for x, row in enumerate(rows):
        assert row["ys"] == [3 * x, 3 * x + 3, 3 * x + 6]
        assert set(row["pids"]) == {row["pid"]} != {os.getpid()}


def test_processpool_fallback_gives_the_same_results():
    with HypernodesEngine(map_executor=ParallelExecutor(max_workers=2, backend="process")) as eng:
        pipeline = Pipeline([add_one, double, picky.with_inputs(x="b")], engine=eng, name="p")
        rows = pipeline.map({"x": [0, 2, 4]}, map_over="x")
        assert rows == [
            {"a": 1, "b": 2, "picky": 2},
            {"a": 3, "b": 6, "picky": 6},
            {"a": 5, "b": 10, "picky": 10},
        ]
        with pytest.raises(ValueError) as info:
            pipeline.map({"x": [0, 2, 3, 5]}, map_over="x")  # b == 8 for x == 3
        assert info.value.__notes__ == [
            "hypernodes: raised by node 'picky' of pipeline p[item 2]; inputs: b=8"
        ]


def test_a_process_based_executor_of_the_users_runs_nodes_and_items():
    # Like Dask's client.get_executor(): tasks, plans and values travel by pickle.
    import loky

    user_pool = loky.ProcessPoolExecutor(max_workers=2)
    try:
        for engine in (
            HypernodesEngine(map_executor=user_pool),
            HypernodesEngine(node_executor=user_pool),
        ):
            pipeline = Pipeline([add_one, double, minus_three, pid_of], engine=engine, name="p")
            rows = pipeline.map({"x": range(5)}, map_over="x")
            assert [(r["a"], r["b"], r["c"]) for r in rows] == [
                (x + 1, 2 * x + 2, 2 * x - 1) for x in range(5)
            ]
            assert os.getpid() not in {r["pid"] for r in rows}
            with pytest.raises(ValueError) as info:
                Pipeline([picky], engine=engine, name="p").map({"x": [1, 4]}, map_over="x")
            assert info.value.__notes__ == [
                "hypernodes: raised by node 'picky' of pipeline p[item 1]; inputs: x=4"
            ]
            engine.shutdown()
        assert user_pool.submit(pow, 3, 2).result() == 9  # still the user's, still running
    finally:
        user_pool.shutdown()


def test_bad_backend_is_refused():
    with pytest.raises(ExecutorError, match="backend"):
        ParallelExecutor(backend="threads")


def test_a_crashed_worker_names_the_item_and_the_next_map_works(engine):
    @node(output_name="y")
    def crash(x: int) -> int:
        if x == 3:
            os._exit(1)
        return x

    with pytest.raises(WorkerCrashedError, match="map item 3 killed the worker") as info:
        Pipeline([crash], engine=engine).map({"x": range(6)}, map_over="x")
    assert info.value.items == [3]
    assert Pipeline([add_one], engine=engine).map({"x": [1]}, map_over="x") == [{"a": 2}]


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_a_crashing_item_loses_only_its_own_row(engine, how):
    @node(output_name="y")
    def crash_on_seven(x: int) -> int:
        if x == 7:
            if how == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGKILL)
        return x * 2

    rows = Pipeline([crash_on_seven], engine=engine).map(
        {"x": range(40)}, map_over="x", on_error="continue"
    )
    assert len(rows) == 40
    assert [r["y"] for i, r in enumerate(rows) if i != 7] == [2 * x for x in range(40) if x != 7]
    failed = rows[7]["y"]
    assert isinstance(failed, ItemError) and isinstance(failed.exception, WorkerCrashedError)
    assert failed.index == 7


MAIN_SCRIPT = textwrap.dedent(
    """
    from hypernodes import HypernodesEngine, ItemError, Pipeline, node

    @node(output_name="y")
    def square(x: int) -> int:
        return x * x

    # No `if __name__ == "__main__"` guard: loky workers do not re-run this script.
    with HypernodesEngine(map_executor="parallel", max_workers=2) as engine:
        rows = Pipeline([square], engine=engine).map({"x": range(5)}, map_over="x")
    print([row["y"] for row in rows])
    """
)


def test_nodes_defined_in_main_run_in_workers(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(MAIN_SCRIPT)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 4, 9, 16]"
