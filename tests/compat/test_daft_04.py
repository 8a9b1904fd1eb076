"""0.4's DaftEngine options, engine-level calls, and map(return_format="daft"|"arrow")."""

from __future__ import annotations

import pyarrow as pa
import pytest

from hypernodes import MemoryCache, Pipeline, PipelineCallback, node

daft = pytest.importorskip("daft", reason="DaftEngine needs the daft extra")

from hypernodes.engines import DaftEngine  # noqa: E402


@node(output_name="doubled")
def double(x: int) -> int:
    return 2 * x


class Ends(PipelineCallback):
    def __init__(self) -> None:
        self.ended: list[str] = []

    def on_node_end(self, node_id, outputs, duration, ctx):
        self.ended.append(node_id)


def test_daft_engine_takes_04_options_and_engine_level_calls():
    ends = Ends()
    engine = DaftEngine(
        use_batch_udf=True, default_daft_config={"batch_size": 2}, callbacks=[ends],
        cache=MemoryCache(),
    )  # fmt: skip
    assert engine.batch_size == 2
    pipeline = Pipeline([double])
    assert engine.map(pipeline, {"x": [1, 2, 3]}, "x") == [
        {"doubled": 2},
        {"doubled": 4},
        {"doubled": 6},
    ]
    assert engine.run(pipeline, {"x": 5}) == {"doubled": 10}
    assert ends.ended.count("double") == 4
    engine.map(pipeline, {"x": [1, 2, 3]}, "x")  # the engine's cache: nothing recomputed
    assert ends.ended.count("double") == 4
    assert DaftEngine(use_batch_udf=False).batch_size == 1
    with pytest.warns(UserWarning, match=r"\['max_workers'\] have no effect"):
        DaftEngine(default_daft_config={"max_workers": 8})


@pytest.mark.parametrize("engine", [None, "daft"])
def test_return_format_daft_and_arrow(engine):
    pipeline = Pipeline([double], engine=DaftEngine() if engine else None)
    frame = pipeline.map({"x": [1, 2]}, map_over="x", return_format="daft")
    assert isinstance(frame, daft.DataFrame)
    assert frame.to_pydict() == {"doubled": [2, 4]}
    table = pipeline.map({"x": [1, 2]}, map_over="x", return_format="arrow")
    assert isinstance(table, pa.Table) and table.to_pydict() == {"doubled": [2, 4]}


def test_dual_node_and_stateful_run_on_daft():
    import pyarrow.compute as pc
    from stateful_models import Scaler

    from hypernodes import DualNode

    def one(x: int) -> int:
        return x * 2

    def many(x: pa.Array) -> pa.Array:
        assert isinstance(x, pa.Array)
        return pc.multiply(x, 2)

    @node(output_name="y")
    def apply(d: int, model: Scaler) -> int:
        return model.scale(d)

    pipeline = Pipeline([DualNode("d", singular=one, batch=many), apply], engine=DaftEngine())
    rows = pipeline.map({"x": [1, 2, 3], "model": Scaler(10)}, map_over="x")
    assert rows == [{"d": 2, "y": 20}, {"d": 4, "y": 40}, {"d": 6, "y": 60}]
