"""The extras in pyproject.toml: ``[all]`` installs every extra the docs promise, none of them
empty; and the claims the README makes about what ``map`` accepts hold."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from hypernodes import Pipeline, node
from hypernodes.exceptions import MapError

ROOT = Path(__file__).resolve().parents[1]
EXTRAS: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
    "optional-dependencies"
]


def extras_in_all() -> list[str]:
    (spec,) = EXTRAS["all"]
    match = re.fullmatch(r"hypernodes\[([a-z0-9,]+)\]", spec)
    assert match, spec
    return match.group(1).split(",")


def promised_by_docs() -> set[str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found: set[str] = set()
    for page in pages:
        for names in re.findall(r"hypernodes\[([a-z0-9,]+)\]", page.read_text(encoding="utf-8")):
            found.update(names.split(","))
    return found


#: extras the engine work fills in (DaftEngine); until then they are empty
PENDING: dict[str, str] = {}


def test_all_holds_every_extra_the_docs_promise():
    promised = promised_by_docs()
    assert {"progress", "viz", "telemetry"} <= promised
    assert promised - {"all", "dev", "bench"} <= set(extras_in_all())


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=PENDING[name]))
        if name in PENDING
        else name
        for name in extras_in_all()
    ],
)
def test_every_extra_in_all_installs_something(extra):
    assert EXTRAS[extra], f"the extra {extra!r} installs nothing"


@pytest.mark.parametrize("value", ["abc", b"abc", {"a": 1}, {1, 2}], ids=type)
def test_map_refuses_what_the_readme_says_it_refuses(value):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "strings, bytes, dicts and sets are refused" in readme

    @node(output_name="y")
    def same(x):
        return x

    with pytest.raises(MapError, match=r"pass \[value\]|list\(d\.values\(\)\)|sorted\(s\)"):
        Pipeline([same]).map({"x": value}, map_over="x")
