"""Values that differ only in what the old keys left out must never share a cache entry."""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cache_faults import cache_messages

import hypernodes.cache as hn_cache
from hypernodes import DiskCache, MemoryCache, Pipeline, node
from hypernodes.cache import keys, value_token

pytestmark = pytest.mark.usefixtures("fresh_cache_warnings")


@pytest.fixture(params=["memory", "disk"])
def cache(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Any:
    return MemoryCache() if request.param == "memory" else DiskCache(tmp_path / "cache")


@pytest.fixture
def clean_registry() -> Iterator[None]:
    yield
    keys._HASHERS.clear()
    keys._resolved.clear()


def _runs(cache: Any, inspect: Callable[[Any], Any]) -> tuple[Pipeline, list[Any]]:
    calls: list[Any] = []

    @node(output_name="seen")
    def look(value: Any) -> Any:
        calls.append(1)
        return inspect(value)

    return Pipeline([look], cache=cache), calls


def _assert_no_stale_hit(cache: Any, first: Any, second: Any, inspect: Callable[[Any], Any]):
    pipeline, calls = _runs(cache, inspect)
    assert pipeline.run({"value": first}) == {"seen": inspect(first)}
    assert inspect(first) != inspect(second)  # the node can tell them apart ...
    assert pipeline.run({"value": second}) == {"seen": inspect(second)}  # ... so must the key
    assert pipeline.run({"value": first}) == {"seen": inspect(first)}
    assert len(calls) == 2  # and each is still cached


def test_cache_stale_dataframe_index_name(cache: Any):
    plain = pd.DataFrame({"a": [1, 2]})
    named = plain.copy()
    named.index.name = "row"
    _assert_no_stale_hit(cache, plain, named, lambda df: df.index.name)
    series = pd.Series([1, 2], index=pd.Index([0, 1], name="i"))
    renamed = series.rename_axis("j")
    _assert_no_stale_hit(cache, series, renamed, lambda s: s.index.name)


def test_cache_stale_ordered_categorical_order(cache: Any):
    def frame(order: list[str]) -> pd.DataFrame:
        kind = pd.CategoricalDtype(order, ordered=True)
        return pd.DataFrame({"size": pd.Series(["s", "m", "l"], dtype=kind)})

    _assert_no_stale_hit(
        cache, frame(["s", "m", "l"]), frame(["l", "m", "s"]), lambda df: df["size"].max()
    )
    small_first = frame(["s", "m", "l"])["size"].array
    _assert_no_stale_hit(
        cache, small_first, frame(["m", "s", "l"])["size"].array, lambda a: a.min()
    )


class Tagged(dict):
    pass


class Rows(list):
    pass


def test_cache_stale_dict_and_list_subclass_attributes(cache: Any):
    a, b = Tagged(v=1), Tagged(v=1)
    a.unit, b.unit = "m", "km"
    _assert_no_stale_hit(cache, a, b, lambda d: f"{d['v']} {d.unit}")
    c, d = Rows([1, 2]), Rows([1, 2])
    c.source, d.source = "a.csv", "b.csv"
    _assert_no_stale_hit(cache, c, d, lambda rows: (sum(rows), rows.source))


def _scaler(weights: Any) -> Callable[[int], Any]:
    def scale(x: int) -> Any:
        return (np.asarray(weights) * x).tolist()

    return scale


def test_cache_stale_function_input_closing_over_data(cache: Any):
    _assert_no_stale_hit(
        cache, _scaler(np.array([1, 2])), _scaler(np.array([3, 4])), lambda fn: fn(1)
    )
    _assert_no_stale_hit(cache, _scaler([1, 2]), _scaler([5, 6]), lambda fn: fn(1))
    _assert_no_stale_hit(
        cache,
        functools.partial(pow, 2),
        functools.partial(pow, 3),
        lambda fn: fn(2),
    )
    assert value_token(_scaler([1, 2])) == value_token(_scaler([1, 2]))  # equal data: equal key


class Blob:
    """A type the cache cannot hash by itself (its state is a memoryview)."""

    def __init__(self, data: bytes) -> None:
        self.buffer = memoryview(bytearray(data))


class GpuBlob(Blob):
    pass


def test_cache_register_hasher_makes_a_foreign_type_cacheable(cache: Any, clean_registry: None):
    pipeline, calls = _runs(cache, lambda blob: bytes(blob.buffer))
    with pytest.warns() as record:
        pipeline.run({"value": Blob(b"abc")})
        pipeline.run({"value": Blob(b"abc")})
    assert len(calls) == 2  # uncached, with one warning naming the type
    assert any("Blob" in m for m in cache_messages(record))

    hn_cache.register_hasher(Blob, lambda blob: bytes(blob.buffer))
    for data in (b"abc", b"abc", b"xyz", GpuBlob(b"abc")):
        value = data if isinstance(data, Blob) else Blob(data)
        assert pipeline.run({"value": value}) == {"seen": bytes(value.buffer)}
    assert len(calls) == 5  # abc, xyz and the subclass (tagged by its own class) ran

    # the closest registered class wins, like functools.singledispatch
    @hn_cache.register_hasher(GpuBlob)
    def _gpu(blob: GpuBlob) -> tuple[str, bytes]:
        return ("gpu", bytes(blob.buffer))

    assert keys.hasher_for(GpuBlob) is _gpu
    assert value_token(GpuBlob(b"abc")) != value_token(Blob(b"abc"))


def test_cache_register_hasher_refuses_builtin_types():
    for builtin in (int, str, list, dict, object):
        with pytest.raises(TypeError, match="cannot be overridden"):
            hn_cache.register_hasher(builtin, repr)
    with pytest.raises(TypeError, match="takes a class"):
        hn_cache.register_hasher("Blob", repr)  # type: ignore[arg-type]
