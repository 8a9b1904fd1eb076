"""Input hashing: type-tagged, deterministic across processes, never silently wrong."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import pathlib
import subprocess
import sys
import threading
from collections import OrderedDict, namedtuple

import pytest
from cache_helpers import subprocess_env
from hypothesis import given
from hypothesis import strategies as st

from hypernodes.cache import Unhashable, value_token


def test_numbers_bools_and_strings_differ():
    tokens = {value_token(v) for v in (1, 1.0, True, "1", b"1", None, 0, False, 0.0, "")}
    assert len(tokens) == 10


def test_containers_are_tagged_by_kind():
    values = [(1, 2), [1, 2], {1, 2}, frozenset({1, 2}), {1: 2}, OrderedDict([(1, 2)])]
    assert len({value_token(v) for v in values}) == len(values)
    Pair = namedtuple("Pair", "a b")
    assert value_token(Pair(1, 2)) != value_token((1, 2))


def test_dicts_and_sets_ignore_order_but_ordered_dicts_do_not():
    assert value_token({"a": 1, "b": [2, 3]}) == value_token({"b": [2, 3], "a": 1})
    assert value_token({3, "x", 1.5}) == value_token({1.5, 3, "x"})
    assert value_token({1: "a", "1": "b"}) == value_token({"1": "b", 1: "a"})  # unsortable keys
    assert value_token(OrderedDict(a=1, b=2)) != value_token(OrderedDict(b=2, a=1))


def test_nested_values_and_long_strings():
    assert value_token([1, [2, [3]]]) != value_token([1, [2, [4]]])
    long_a, long_b = "x" * 1000, "x" * 999 + "y"
    assert value_token(long_a) != value_token(long_b)
    assert value_token(long_a) == value_token("x" * 1000)
    assert value_token(2**200) != value_token(2**200 + 1)


@dataclasses.dataclass
class Point:
    x: int
    y: float


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Opaque:
    def __init__(self, n: int) -> None:
        self.n = n


class Keyed:
    def __init__(self, key: str) -> None:
        self.key = key
        self.lock = threading.Lock()  # would be unhashable, but __cache_key__ decides

    def __cache_key__(self) -> str:
        return self.key


def test_dataclasses_enums_objects_and_cache_key():
    assert value_token(Point(1, 2.0)) == value_token(Point(1, 2.0))
    assert value_token(Point(1, 2.0)) != value_token(Point(1, 2.5))
    assert value_token(Color.RED) != value_token(Color.BLUE)
    assert value_token(Opaque(1)) == value_token(Opaque(1))
    assert value_token(Opaque(1)) != value_token(Opaque(2))
    assert value_token(Keyed("a")) == value_token(Keyed("a"))
    assert value_token(Keyed("a")) != value_token(Keyed("b"))


def test_stdlib_values():
    day = datetime.date(2024, 1, 2)
    assert value_token(day) != value_token(datetime.date(2024, 1, 3))
    assert value_token(decimal.Decimal("1.10")) != value_token(decimal.Decimal("1.1"))
    assert value_token(pathlib.Path("a/b")) == value_token(pathlib.Path("a/b"))


def test_unhashable_values_raise():
    with pytest.raises(Unhashable):
        value_token(threading.Lock())
    with pytest.raises(Unhashable):
        value_token([1, threading.Lock()])
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(Unhashable, match="contains itself"):
        value_token(loop)
    with pytest.raises(Unhashable):
        value_token(sys)

    class Broken:
        def __cache_key__(self):
            raise RuntimeError("no key today")

    with pytest.raises(Unhashable, match="no key today"):
        value_token([Broken()])


def test_numpy_arrays_and_scalars():
    np = pytest.importorskip("numpy")
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    assert value_token(a) == value_token(a.copy())
    assert value_token(a) != value_token(a.reshape(3, 2))
    assert value_token(a) != value_token(a.astype(np.int32))
    assert value_token(a.T) == value_token(np.ascontiguousarray(a.T))
    assert value_token(np.int64(1)) != value_token(1)
    assert value_token(np.array(["a", None], dtype=object)) != value_token(
        np.array(["a", "b"], dtype=object)
    )


def test_pandas_objects():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    assert value_token(df) == value_token(df.copy())
    assert value_token(df) != value_token(df.rename(columns={"b": "c"}))
    assert value_token(df) != value_token(df.assign(a=[1, 3]))
    assert value_token(df["a"]) != value_token(df["a"].rename("z"))
    assert value_token(df.index) == value_token(pd.RangeIndex(2))


def test_pydantic_models():
    pydantic = pytest.importorskip("pydantic")

    class Config(pydantic.BaseModel):
        name: str
        size: int = 3

    assert value_token(Config(name="a")) == value_token(Config(name="a"))
    assert value_token(Config(name="a")) != value_token(Config(name="a", size=4))


_PROBE = """
import sys
from hypernodes.cache import value_token
values = [{"b", "a", "c"}, frozenset({"x", "y"}), {"k": {"z", "w"}}, ("t", 1.5, None), 2**70]
print(value_token(values).hex())
"""


def test_tokens_are_the_same_in_other_processes():
    outs = {
        subprocess.run(
            [sys.executable, "-c", _PROBE],
            env=subprocess_env(PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "random")
    }
    assert len(outs) == 1 and len(next(iter(outs))) == 34


_atoms = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(), st.binary()
)
_values = st.recursive(
    _atoms,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
        st.frozensets(st.integers(), max_size=4),
    ),
    max_leaves=12,
)


@given(_values)
def test_token_of_a_copy_is_the_same(value):
    import copy

    assert value_token(value) == value_token(copy.deepcopy(value))


@given(_values, _values)
def test_different_values_give_different_tokens(a, b):
    # repr is type-exact for these values except dict/set order, which the token ignores
    if repr(a) != repr(b) and not isinstance(a, (dict, frozenset)):
        assert value_token(a) != value_token(b) or _same_up_to_order(a, b)


def _same_up_to_order(a, b) -> bool:
    return type(a) is type(b) and a == b and repr(a) != repr(b)
