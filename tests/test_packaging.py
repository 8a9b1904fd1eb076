"""The package as released: the extras in pyproject.toml (``[all]`` installs every extra the docs
promise, none of them empty), the claims the README makes about what ``map`` accepts, one version
source, the metadata an index shows, and what ``python -m build`` puts in the sdist and wheel
(checked by ``twine check``)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
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


# -- the release: one version, the metadata an index shows, what the sdist and wheel carry --------

ROOT_FILES = ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md", "MANIFEST.in", "mkdocs.yml")
ROOT_DIRS = ("src", "docs", "examples")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An sdist and a wheel built with ``python -m build`` from a copy of the checkout (so the
    build sees only what a fresh clone has, and writes nothing into this one)."""
    tree = tmp_path_factory.mktemp("checkout")
    for name in ROOT_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, tree / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "output")
    for name in ROOT_DIRS:
        shutil.copytree(ROOT / name, tree / name, ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(tree)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # MANIFEST.in names only files that exist (a stale line warns "no files found matching")
    assert "no files found matching" not in result.stdout + result.stderr
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_version_has_one_source_above_the_published_release():
    import hypernodes

    version = tuple(int(part) for part in hypernodes.__version__.split("."))
    assert version > (0, 4, 8), "the original hypernodes 0.4.8 is on PyPI; pip -U must pick ours"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{hypernodes.__version__}]" in changelog


def test_metadata_names_license_authors_classifiers_and_urls():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert project["authors"]
    classifiers = set(project["classifiers"])
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in (11, 12, 13)} <= classifiers
    assert "Typing :: Typed" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers), "SPDX license replaces these"
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(project["urls"])


def test_wheel_holds_the_package_its_types_and_license(dists):
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = wheel.read(metadata).decode()
    import hypernodes

    assert "hypernodes/py.typed" in names
    assert "hypernodes/model/node.py" in names and "hypernodes/cli/command.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert f"\nVersion: {hypernodes.__version__}\n" in text
    assert "\nLicense-Expression: MIT\n" in text
    assert "Classifier: Typing :: Typed" in text
    assert not any(n.startswith(("tests/", "docs/")) for n in names)


def test_sdist_carries_docs_license_and_changelog(dists):
    with tarfile.open(dists["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert pages and pages <= names
    assert {"LICENSE", "CHANGELOG.md", "README.md", "src/hypernodes/py.typed"} <= names
    assert "examples/demo.py" in names
    assert not any("__pycache__" in n for n in names)


def test_twine_check_passes_without_warnings(dists):
    files = [str(dists["sdist"]), str(dists["wheel"])]
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("PASSED") == 2 and "WARNING" not in output.upper(), output


# -- the repository's two commands: make demo installs what the demo needs, make test wants dot --


def make(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    make_program = shutil.which("make")
    if make_program is None:
        pytest.skip("the make program is not installed (apt-get install make)")
    env = {"HOME": str(Path.home()), "PATH": path if path is not None else "/usr/bin:/bin"}
    return subprocess.run(
        [make_program, "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_make_demo_installs_the_package_without_the_dev_extra(tmp_path):
    plan = make("-n", "demo", f"VENV={tmp_path / 'venv'}")
    assert plan.returncode == 0, plan.stderr
    installs = [line for line in plan.stdout.splitlines() if "pip install" in line]
    assert installs and all('-e ".[progress]"' in line for line in installs), plan.stdout
    # what examples/demo.py imports is there with that extra alone: hypernodes and rich
    demo = (ROOT / "examples" / "demo.py").read_text(encoding="utf-8")
    imported = set(re.findall(r"^(?:from|import) (\w+)", demo, re.M))
    assert imported - {"__future__", "pathlib", "re", "time", "collections"} == {"hypernodes"}


def test_make_test_stops_first_when_dot_is_missing(tmp_path):
    # a PATH with no dot (nor anything else): make runs its recipes with /bin/sh
    done = make("test", f"VENV={tmp_path / 'venv'}", path=str(tmp_path))
    assert done.returncode != 0
    assert "graphviz's 'dot' program is missing" in done.stderr
    assert "apt-get install graphviz" in done.stderr and "brew install graphviz" in done.stderr
    assert not (tmp_path / "venv").exists(), "nothing is installed before the check"


def test_readme_reads_as_an_index_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme[: readme.index("## What is there")]
    # pip first, the contributor commands in their own section near the top
    assert head.index("pip install hypernodes") < head.index("make demo")
    assert "## Working on this repository" in head and "make test" in head
    for extra in extras_in_all():
        assert f"| `{extra}`" in readme, f"the extras table lacks {extra!r}"
    # links work off the repository: absolute, to the repository the project URLs name
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    source = project["urls"]["Source"]
    links = re.findall(r"\]\(([^)]+)\)", readme)
    assert links and all(link.startswith(("https://", "http://")) for link in links), links
    assert all(link.startswith(source) for link in links if "github.com" in link), links
    assert "../shared" not in readme
    assert readme.count("runs a map as a") == 1, "one Engines paragraph"


def test_dev_extra_holds_what_the_fast_subset_needs():
    """.ci/run runs the fast subset on 3.12/3.13 with the ``test`` extra, the suite with ``dev``."""
    assert set(EXTRAS["test"]) <= set(EXTRAS["dev"])
