"""Stale hits: a second run must never return the first run's result when what decides the
value changed - an input that differs only in a detail, or code edited between two processes.

The code-edit cases run a script twice in real child processes with a DiskCache: the source is
edited between the two runs, as a user edits a file between two runs of a job.  Cosmetic edits
(a comment, a docstring, formatting) must stay hits.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import subprocess
import sys
import textwrap
from collections import defaultdict
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from cache_helpers import subprocess_env

from hypernodes import Pipeline, node
from hypernodes.observe.callbacks import PipelineCallback

# ---------------------------------------------------------------------------------------------
# Input values that differ only in a detail get different keys (MemoryCache and DiskCache)


@dataclasses.dataclass
class Settings:
    rate: int


def _with_attrs(frame: pd.DataFrame, **attrs: object) -> pd.DataFrame:
    frame.attrs.update(attrs)
    return frame


def _with_extra(settings: Settings, **extra: object) -> Settings:
    for name, value in extra.items():
        setattr(settings, name, value)
    return settings


PARIS = ZoneInfo("Europe/Paris")
PLUS_ONE = datetime.timezone(datetime.timedelta(hours=1))

VALUE_PAIRS = {
    "object column None vs NaN": (
        lambda: pd.DataFrame({"a": [None, "x"]}, dtype=object),
        lambda: pd.DataFrame({"a": [np.nan, "x"]}, dtype=object),
    ),
    "object column True vs 'True'": (
        lambda: pd.DataFrame({"a": [True, "a"]}),
        lambda: pd.DataFrame({"a": ["True", "a"]}),
    ),
    "object column NaN vs pd.NA": (
        lambda: pd.Series([np.nan, "x"], dtype=object),
        lambda: pd.Series([pd.NA, "x"], dtype=object),
    ),
    "df.attrs": (
        lambda: pd.DataFrame({"a": [1, 2]}),
        lambda: _with_attrs(pd.DataFrame({"a": [1, 2]}), unit="m"),
    ),
    "signed zero in a float column": (
        lambda: pd.DataFrame({"a": [0.0, 1.0]}),
        lambda: pd.DataFrame({"a": [-0.0, 1.0]}),
    ),
    "signed zero in a float index": (
        lambda: pd.Series([1, 2], index=[0.0, 1.0]),
        lambda: pd.Series([1, 2], index=[-0.0, 1.0]),
    ),
    "NaN kinds in a float column": (
        lambda: pd.Series([np.nan]),
        lambda: pd.Series(np.array([0x7FF8000000000001], dtype=np.int64).view(np.float64)),
    ),
    "nullable column NA vs 0": (
        lambda: pd.Series([1, None], dtype="Int64"),
        lambda: pd.Series([1, 0], dtype="Int64"),
    ),
    "dataclass attribute set after construction": (
        lambda: Settings(1),
        lambda: _with_extra(Settings(1), boost=2),
    ),
    "defaultdict factory": (
        lambda: defaultdict(int, {"a": 1}),
        lambda: defaultdict(list, {"a": 1}),
    ),
    "datetime named zone vs fixed offset": (
        lambda: datetime.datetime(2024, 1, 1, 12, tzinfo=PARIS),
        lambda: datetime.datetime(2024, 1, 1, 12, tzinfo=PLUS_ONE),
    ),
    "Timestamp named zone vs fixed offset": (
        lambda: pd.Timestamp(datetime.datetime(2024, 1, 1, 12, tzinfo=PARIS)),
        lambda: pd.Timestamp(datetime.datetime(2024, 1, 1, 12, tzinfo=PLUS_ONE)),
    ),
    "datetime fold": (
        lambda: datetime.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=0),
        lambda: datetime.datetime(2024, 10, 27, 2, 30, tzinfo=PARIS, fold=1),
    ),
}


@pytest.mark.parametrize("case", list(VALUE_PAIRS), ids=list(VALUE_PAIRS))
def test_values_that_differ_in_a_detail_do_not_share_an_entry(case, make_cache):
    first, second = (make() for make in VALUE_PAIRS[case])
    calls = []

    @node(output_name="seen")
    def seen(value: object) -> object:
        calls.append(1)
        return value

    pipeline = Pipeline([seen], cache=make_cache())
    assert pipeline.run({"value": first})["seen"] is not None
    pipeline.run({"value": second})
    assert len(calls) == 2, f"{case}: the second value was served the first one's entry"
    Pipeline([seen], cache=make_cache()).run({"value": VALUE_PAIRS[case][1]()})
    assert len(calls) == 2, f"{case}: an equal value must still hit"


# ---------------------------------------------------------------------------------------------
# A callback that mutates what it is given cannot change what is stored


class Mutator(PipelineCallback):
    def on_node_end(self, *, node, outputs, **kwargs):
        outputs["rows"].append("added by a callback")


@node(output_name="rows")
def rows(n: int) -> list:
    return list(range(n))


def test_a_callback_mutating_outputs_does_not_change_the_stored_value(make_cache):
    Pipeline([rows], cache=make_cache(), callbacks=[Mutator()]).run({"n": 2})
    assert Pipeline([rows], cache=make_cache()).run({"n": 2}) == {"rows": [0, 1]}
    Pipeline([rows], cache=make_cache(), callbacks=[Mutator()]).map({"n": [3, 4]}, map_over="n")
    again = Pipeline([rows], cache=make_cache()).map({"n": [3, 4]}, map_over="n")
    assert again == [{"rows": [0, 1, 2]}, {"rows": [0, 1, 2, 3]}]


# ---------------------------------------------------------------------------------------------
# Code edited between two processes (DiskCache)

NODES_HEAD = """
from hypernodes import node
CALLS = []
"""

#: case -> (files at the first run, files at the second run, y of the first, y of the second);
#: ``{m}`` is the case's module prefix; ``y`` equal means the edit is cosmetic: it must hit
CODE_CASES: dict[str, tuple[dict[str, str], dict[str, str], int, int]] = {}


def _case(name: str, v1: dict[str, str], v2: dict[str, str], y1: int, y2: int) -> None:
    CODE_CASES[name] = (v1, v2, y1, y2)


_NODE_CALLING_HELPER = """
from {m}_helpers import helper

@node(output_name="y")
def f(x):
    CALLS.append(1)
    return helper(x)
"""

for _decorator in ("functools.lru_cache", "functools.lru_cache(maxsize=None)", "functools.cache"):
    _helper = f"import functools\n\n@{_decorator}\ndef helper(x):\n    return x * {{k}}\n"
    _case(
        f"helper wrapped in {_decorator}",
        {"helpers": _helper.replace("{k}", "2"), "nodes": _NODE_CALLING_HELPER},
        {"helpers": _helper.replace("{k}", "5"), "nodes": _NODE_CALLING_HELPER},
        6,
        15,
    )

_WRAPS = """
import functools

def logged(fn):
    @functools.wraps(fn)
    def inner(*args):
        return fn(*args)
    return inner

@logged
def helper(x):
    return x * {k}
"""
_case(
    "helper decorated with functools.wraps",
    {"helpers": _WRAPS.replace("{k}", "2"), "nodes": _NODE_CALLING_HELPER},
    {"helpers": _WRAPS.replace("{k}", "5"), "nodes": _NODE_CALLING_HELPER},
    6,
    15,
)

_CLASS_CONSTANT = """
from {m}_helpers import Cfg

@node(output_name="y")
def f(x):
    CALLS.append(1)
    return x * Cfg.FACTOR
"""
_case(
    "class constant Cfg.FACTOR",
    {"helpers": "class Cfg:\n    FACTOR = 2\n", "nodes": _CLASS_CONSTANT},
    {"helpers": "class Cfg:\n    FACTOR = 5\n", "nodes": _CLASS_CONSTANT},
    6,
    15,
)

_ENUM = """
from {m}_helpers import Level

@node(output_name="y")
def f(x):
    CALLS.append(1)
    return x * Level.HIGH.value
"""
_ENUM_HELPERS = "import enum\n\nclass Level(enum.Enum):\n    LOW = 1\n    HIGH = {k}\n"
_case(
    "enum member value",
    {"helpers": _ENUM_HELPERS.replace("{k}", "2"), "nodes": _ENUM},
    {"helpers": _ENUM_HELPERS.replace("{k}", "5"), "nodes": _ENUM},
    6,
    15,
)

_SUBMODULE = """
import {m}_pkg.sub

@node(output_name="y")
def f(x):
    CALLS.append(1)
    return {m}_pkg.sub.helper(x)
"""
_case(
    "import pkg.sub then pkg.sub.helper(x)",
    {"pkg/__init__": "", "pkg/sub": "def helper(x):\n    return x * 2\n", "nodes": _SUBMODULE},
    {"pkg/__init__": "", "pkg/sub": "def helper(x):\n    return x * 5\n", "nodes": _SUBMODULE},
    6,
    15,
)

_DISPATCH = """
import functools

@functools.singledispatch
def helper(x):
    raise TypeError(x)

@helper.register
def _(x: int):
    return x * {k}
"""
_case(
    "singledispatch implementation",
    {"helpers": _DISPATCH.replace("{k}", "2"), "nodes": _NODE_CALLING_HELPER},
    {"helpers": _DISPATCH.replace("{k}", "5"), "nodes": _NODE_CALLING_HELPER},
    6,
    15,
)

_TUPLE = """
from {m}_helpers import STEPS

@node(output_name="y")
def f(x):
    CALLS.append(1)
    for step in STEPS:
        x = step(x)
    return x
"""
_TUPLE_HELPERS = (
    "def double(x):\n    return x * {k}\n\ndef inc(x):\n    return x + 1\n\nSTEPS = (double, inc)\n"
)
_case(
    "module-level tuple of functions",
    {"helpers": _TUPLE_HELPERS.replace("{k}", "2"), "nodes": _TUPLE},
    {"helpers": _TUPLE_HELPERS.replace("{k}", "5"), "nodes": _TUPLE},
    7,
    16,
)

_CALLABLE = """
class Scaler:
    def __call__(self, x):
        return x * {k}

helper = Scaler()
"""
_case(
    "module-level callable object's __call__",
    {"helpers": _CALLABLE.replace("{k}", "2"), "nodes": _NODE_CALLING_HELPER},
    {"helpers": _CALLABLE.replace("{k}", "5"), "nodes": _NODE_CALLING_HELPER},
    6,
    15,
)

_METHOD_OF_INPUT = """
from {m}_helpers import Model
INPUTS = {"x": 3, "model": Model()}

@node(output_name="y")
def f(x, model):
    CALLS.append(1)
    return model.predict(x)
"""
_MODEL = "class Model:\n    def __init__(self):\n        self.bias = 0\n\n    def predict(self, x):\n        return x * {k} + self.bias\n"
_case(
    "method of an input object's class",
    {"helpers": _MODEL.replace("{k}", "2"), "nodes": _METHOD_OF_INPUT},
    {"helpers": _MODEL.replace("{k}", "5"), "nodes": _METHOD_OF_INPUT},
    6,
    15,
)

# cosmetic edits: hits
_PLAIN = "def helper(x):\n    return x * 2\n"
_case(
    "comment added to a helper (hit)",
    {"helpers": _PLAIN, "nodes": _NODE_CALLING_HELPER},
    {
        "helpers": "# scale it\ndef helper(x):\n    # twice\n    return x * 2  # here\n",
        "nodes": _NODE_CALLING_HELPER,
    },
    6,
    6,
)
_case(
    "docstring changed in a helper (hit)",
    {
        "helpers": 'def helper(x):\n    """Twice."""\n    return x * 2\n',
        "nodes": _NODE_CALLING_HELPER,
    },
    {
        "helpers": 'def helper(x):\n    """Two times x, for the report."""\n    return x * 2\n',
        "nodes": _NODE_CALLING_HELPER,
    },
    6,
    6,
)
_case(
    "formatting of the node changed (hit)",
    {"helpers": _PLAIN, "nodes": _NODE_CALLING_HELPER},
    {
        "helpers": _PLAIN,
        "nodes": _NODE_CALLING_HELPER.replace(
            "return helper(x)", "return helper(\n        x\n    )\n\n\n"
        ),
    },
    6,
    6,
)
_case(
    "docstring of a method of an input's class (hit)",
    {"helpers": _MODEL.replace("{k}", "2"), "nodes": _METHOD_OF_INPUT},
    {
        "helpers": _MODEL.replace("{k}", "2").replace(
            "def predict(self, x):\n", 'def predict(self, x):\n        """Predict."""\n'
        ),
        "nodes": _METHOD_OF_INPUT,
    },
    6,
    6,
)


def _prefix(case: str) -> str:
    return f"c{list(CODE_CASES).index(case)}"


def _write(folder, case: str, files: dict[str, str]) -> None:
    m = _prefix(case)
    for name, source in files.items():
        path = folder / f"{m}_{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = source.replace("{m}", m)
        if name == "nodes":
            text = NODES_HEAD + text
        path.write_text(textwrap.dedent(text))


def _run_all(folder, cache_dir) -> dict[str, dict]:
    """Run every case's pipeline once, in one fresh process (one cache directory per case)."""
    script = folder / "run_cases.py"
    lines = [
        "import json, sys, traceback",
        "from hypernodes import DiskCache, Pipeline",
        "out = {}",
    ]
    for case in CODE_CASES:
        m = _prefix(case)
        lines += [
            "try:",
            f"    import {m}_nodes as mod",
            '    inputs = getattr(mod, "INPUTS", {"x": 3})',
            f"    cache = DiskCache(sys.argv[1] + '/{m}', key=b'k' * 32)",
            "    result = Pipeline([mod.f], cache=cache).run(inputs)",
            f"    out[{case!r}] = {{'y': result['y'], 'calls': len(mod.CALLS)}}",
            "except Exception:",
            f"    out[{case!r}] = {{'error': traceback.format_exc()}}",
        ]
    lines.append("print(json.dumps(out))")
    script.write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, "-B", str(script), str(cache_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env=subprocess_env(str(folder)),
        cwd=folder,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def code_runs(tmp_path_factory):
    """Both runs of every case: (first process's results, second process's results)."""
    folder = tmp_path_factory.mktemp("edits")
    cache_dir = tmp_path_factory.mktemp("edit-caches")
    for case, (v1, _, _, _) in CODE_CASES.items():
        _write(folder, case, v1)
    first = _run_all(folder, cache_dir)
    for case, (_, v2, _, _) in CODE_CASES.items():
        _write(folder, case, v2)
    second = _run_all(folder, cache_dir)
    return first, second


@pytest.mark.parametrize("case", list(CODE_CASES), ids=list(CODE_CASES))
def test_code_edited_between_two_processes(case, code_runs):
    first, second = code_runs
    _, _, y1, y2 = CODE_CASES[case]
    assert "error" not in first[case], first[case].get("error")
    assert first[case] == {"y": y1, "calls": 1}
    assert "error" not in second[case], second[case].get("error")
    if y1 == y2:  # a cosmetic edit: still a hit
        assert second[case] == {"y": y1, "calls": 0}, f"{case}: a cosmetic edit missed"
    else:
        assert second[case] == {"y": y2, "calls": 1}, f"{case}: stale hit after the edit"


def test_cycles_between_modules_and_classes_are_cut(modules):
    """Modules that import each other, a class whose attribute is its own instance, and
    functions calling each other across modules digest without recursing forever, and an edit
    on either side of the cycle still changes the digest."""
    from hypernodes.cache.code import callable_digest

    def load(k):
        (modules.folder / "cyc_b.py").write_text(
            "import cyc_a\n\ndef g(x):\n    return cyc_a.f(x - 1) if x else 0\n"
        )
        sys.modules.pop("cyc_b", None)  # imported afresh by cyc_a, which it imports in turn
        source = (
            "import cyc_b\n\n"
            "class Node:\n    FACTOR = %d\n\n    def step(self, x):\n        return x * Node.FACTOR\n\n"
            "Node.default = Node()\n\n"
            "def f(x):\n    return cyc_b.g(x) + Node.default.step(x) + cyc_b.cyc_a.Node.FACTOR\n"
        )
        return modules.load("cyc_a", source % k)

    first = callable_digest(load(2).f)
    assert callable_digest(load(2).f) == first
    assert callable_digest(load(3).f) != first
