"""Errors from worker processes come back as themselves, and remote engines check their
arguments where they are made (issue 23, "Internal errors").

A node's exception whose ``__init__`` takes other arguments than it gives ``super().__init__``
used to fail to unpickle in the caller (``TypeError: __init__() missing 1 required positional
argument``), hiding the node's error.  It now keeps its type and attributes; one that cannot be
rebuilt at all becomes a ``RemoteError`` with its type name, message and the worker's traceback.
Checked under ``"parallel"`` and Dask (a real two-process ``LocalCluster`` on 127.0.0.1).
"""

from __future__ import annotations

import threading

import pytest

from hypernodes import HypernodesEngine, ItemError, Pipeline, node
from hypernodes.exceptions import (
    ExecutorError,
    HyperNodesError,
    SettingValueError,
    UnpicklableError,
)

pytestmark = pytest.mark.timeout(180)


class TwoArgError(Exception):
    """Takes two arguments, passes one message up: pickles, but ``TwoArgError(msg)`` fails."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")
        self.code = code


class NoRebuildError(Exception):
    """Cannot be made without its two arguments, not even by ``__new__``."""

    def __new__(cls, code: int, detail: str):
        return super().__new__(cls, code, detail)

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")


@node(output_name="y")
def raises_two_arg(x: int) -> int:
    if x == 1:
        raise TwoArgError(42, "bad row")
    return x


@node(output_name="y")
def raises_no_rebuild(x: int) -> int:
    if x == 1:
        raise NoRebuildError(7, "cannot come back")
    return x


def _check_two_arg(exc: BaseException) -> None:
    assert type(exc) is TwoArgError
    assert str(exc) == "code 42: bad row" and exc.code == 42
    assert any("raised by node 'raises_two_arg'" in note for note in exc.__notes__)


def _check_stand_in(exc: BaseException) -> None:
    assert isinstance(exc, HyperNodesError) and type(exc).__name__ == "RemoteError"
    text = str(exc)
    assert "NoRebuildError raised in a worker process could not be rebuilt here" in text
    assert "cannot come back" in text and "Traceback" in text and "raises_no_rebuild" in text


@pytest.fixture(scope="module")
def parallel():
    with HypernodesEngine(map_executor="parallel", max_workers=1) as engine:
        yield engine


def test_an_exception_with_a_two_argument_init_comes_back_as_itself(parallel):
    pipeline = Pipeline([raises_two_arg], engine=parallel, name="p")
    with pytest.raises(TwoArgError) as info:
        pipeline.map({"x": [0, 1, 2]}, map_over="x")
    _check_two_arg(info.value)
    rows = pipeline.map({"x": [0, 1, 2]}, map_over="x", on_error="continue")
    assert rows[0] == {"y": 0} and rows[2] == {"y": 2}
    assert isinstance(rows[1]["y"], ItemError)
    _check_two_arg(rows[1]["y"].exception)


def test_an_exception_that_cannot_be_rebuilt_comes_back_as_a_stand_in(parallel):
    pipeline = Pipeline([raises_no_rebuild], engine=parallel, name="p")
    with pytest.raises(HyperNodesError) as info:
        pipeline.map({"x": [0, 1, 2]}, map_over="x")
    _check_stand_in(info.value)
    rows = pipeline.map({"x": [0, 1, 2]}, map_over="x", on_error="continue")
    _check_stand_in(rows[1]["y"].exception)


# -- Dask ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("distributed", reason="the Dask tests need the dask extra")
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
    )
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def test_dask_brings_node_exceptions_back_as_themselves(dask_client):
    from hypernodes.engines import DaskEngine

    engine = DaskEngine(client=dask_client)
    try:
        with pytest.raises(TwoArgError) as info:
            Pipeline([raises_two_arg], engine=engine).map({"x": [0, 1, 2]}, map_over="x")
        _check_two_arg(info.value)
        rows = Pipeline([raises_no_rebuild], engine=engine).map(
            {"x": [0, 1, 2]}, map_over="x", on_error="continue"
        )
        _check_stand_in(rows[1]["y"].exception)
    finally:
        engine.shutdown()


def test_a_closed_dask_client_is_named(dask_client):
    pytest.importorskip("distributed")
    from distributed import Client

    from hypernodes.engines import DaskEngine

    closed = Client(dask_client.scheduler.address, set_as_default=False)
    closed.close()
    engine = DaskEngine(client=closed)
    with pytest.raises(ExecutorError, match=r"the Dask client given to DaskEngine is closed"):
        Pipeline([raises_two_arg], engine=engine).map({"x": [0, 2]}, map_over="x")


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"address": "not a url"}, ExecutorError, r"address='not a url'\) is not a Dask scheduler"),
        ({"address": 8786}, ExecutorError, r"is not a Dask scheduler address"),
        ({"address": "http://host:1"}, ExecutorError, r"with a protocol among"),
        ({"chunk_size": "5"}, SettingValueError, r"chunk_size must be a whole number.*=5"),
        ({"max_in_flight": 2.5}, SettingValueError, r"max_in_flight must be a whole number"),
        ({"connect_timeout": "10"}, SettingValueError, r"connect_timeout must be a finite"),
    ],
)
def test_dask_engine_arguments_are_checked_when_it_is_made(kwargs, error, says):
    pytest.importorskip("distributed")
    from hypernodes.engines import DaskEngine

    with pytest.raises(error, match=says):
        DaskEngine(**kwargs)


def test_good_dask_addresses_are_accepted():
    pytest.importorskip("distributed")
    from hypernodes.engines import DaskEngine

    for address in ("tcp://127.0.0.1:8786", "127.0.0.1:8786", "tls://scheduler:8786"):
        DaskEngine(address=address, connect_timeout=1).shutdown()


# -- Daft ---------------------------------------------------------------------------------------


@node(output_name="y")
def uses_lock(x: int, lock: object) -> int:
    return x + 1


def test_a_lock_shared_by_a_daft_map_is_named_as_unpicklable():
    pytest.importorskip("daft", reason="the Daft tests need the daft extra")
    from hypernodes.engines import DaftEngine

    with pytest.raises(UnpicklableError, match=r"shared input 'lock' cannot be sent to a Daft UDF"):
        Pipeline([uses_lock], engine=DaftEngine()).map(
            {"x": [1, 2], "lock": threading.Lock()}, map_over="x"
        )
