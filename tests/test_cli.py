"""The ``hypernodes`` command as users run it: the installed console script, in a subprocess,
against the example pipelines in ``examples/``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import hypernodes
from hypernodes import Pipeline, engines

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "cli_pipelines.py"
TEXT = f"{EXAMPLES}:text"
CORPUS = f"{EXAMPLES}:corpus"
CHECKED = f"{EXAMPLES}:checked"


def _script() -> str:
    beside = Path(sys.executable).parent / "hypernodes"
    if beside.is_file():
        return str(beside)
    found = shutil.which("hypernodes")
    assert found, "the hypernodes console script is not installed: pip install -e '.[dev]'"
    return found


HN = _script()


def hn(
    *args: str, cwd: Path = ROOT, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("HYPERNODES_TRACEBACK", None)
    return subprocess.run(
        [HN, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        timeout=timeout,
        env=env,
    )


def ok(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = hn(*args, **kwargs)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    return result


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The command failed with ``code`` and said so in one line on stderr, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hypernodes: error: "), lines[0]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------------------------
# help, version, python -m


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["viz"], ["describe"], ["cache"], ["cache", "info"], ["cache", "clear"]],
)
def test_every_help_lists_examples(command: list[str]) -> None:
    result = ok(*command, "--help")
    assert result.stdout.startswith("Usage: hypernodes")
    assert "Examples:" in result.stdout or "Example:" in result.stdout
    assert "hypernodes " + " ".join(command) in result.stdout.split("Example")[-1]


def test_version_and_python_dash_m() -> None:
    assert ok("--version").stdout.strip() == f"hypernodes, version {hypernodes.__version__}"
    result = subprocess.run(
        [sys.executable, "-m", "hypernodes", "run", TEXT, "-i", "text=Hi there"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout)["n_words"] == 2


def test_import_hypernodes_does_not_import_the_command() -> None:
    code = "import sys, hypernodes; print('click' in sys.modules, 'hypernodes.cli' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------------------------------------
# run


def test_run_prints_the_outputs_as_json() -> None:
    result = ok("run", TEXT, "-i", "text=  Hello big World ")
    assert json.loads(result.stdout) == {
        "cleaned": "hello big world",
        "words": ["hello", "big", "world"],
        "n_words": 3,
        "longest": "hello",
    }
    assert result.stderr == ""


def test_input_values_parse_as_json_else_strings() -> None:
    result = ok("run", TEXT, "-i", "text=Hello World", "-i", "lowercase=false")
    assert json.loads(result.stdout)["cleaned"] == "Hello World"
    # a number that is an input of type str stays what JSON says: the node gets what was given
    result = ok("run", f"{EXAMPLES}:ratio", "-i", "numerator=2", "--output", "ratio")
    assert json.loads(result.stdout) == {"ratio": "Fraction(2, 3)"}


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("inputs.json", '{"text": "one two three", "lowercase": false}'),
        ("inputs.yaml", "text: one two three\nlowercase: false\n"),
        ("inputs.toml", 'text = "one two three"\nlowercase = false\n'),
    ],
)
def test_inputs_file_in_each_format_and_i_overrides_it(
    tmp_path: Path, name: str, content: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    result = ok("run", TEXT, "--inputs", str(path), "--output", "n_words")
    assert json.loads(result.stdout) == {"n_words": 3}
    result = ok("run", TEXT, "--inputs", str(path), "-i", "text=just two", "--output", "n_words")
    assert json.loads(result.stdout) == {"n_words": 2}


def test_output_selects_and_prunes() -> None:
    result = ok("run", TEXT, "-i", "text=a bb ccc", "--output", "longest", "--output", "n_words")
    assert json.loads(result.stdout) == {"longest": "ccc", "n_words": 3}


def test_module_attr_target_and_function_target(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(
        textwrap.dedent(
            """
            from hypernodes import Pipeline, node

            @node(output_name="shout")
            def shout(text: str) -> str:
                return text.upper() + "!"

            pipeline = Pipeline([shout], name="shout")

            def make():
                return pipeline.with_name("made")
            """
        )
    )
    # module:attr, found in the current directory; no :attr means `pipeline`; a function works
    for target in ("flows:pipeline", "flows", "flows:make", str(tmp_path / "flows.py")):
        result = ok("run", target, "-i", "text=hi", cwd=tmp_path)
        assert json.loads(result.stdout) == {"shout": "HI!"}


def test_map_prints_rows_in_input_order() -> None:
    texts = ["a b", "c", "d e f g"]
    result = ok("run", TEXT, "--map-over", "text", "-i", f"text={json.dumps(texts)}")
    rows = json.loads(result.stdout)
    expected = in_process_rows(texts)
    assert rows == expected


def in_process_rows(texts: list[str]) -> list[dict[str, object]]:
    """What the example pipeline gives in-process, to compare the command's output with."""
    sys.path.insert(0, str(EXAMPLES.parent))
    try:
        import cli_pipelines
    finally:
        sys.path.pop(0)
    rows = cli_pipelines.text.map({"text": texts}, map_over="text")
    assert isinstance(rows, list)
    return rows


def test_map_streams_one_json_line_per_item() -> None:
    texts = ["a b", "c", "d e f g", "h i"]
    result = ok(
        "run", TEXT, "--map-over", "text", "-i", f"text={json.dumps(texts)}", "--format", "jsonl"
    )
    lines = result.stdout.splitlines()
    assert len(lines) == len(texts)
    records = [json.loads(line) for line in lines]
    assert [r["index"] for r in records] == [0, 1, 2, 3]
    assert [r["outputs"] for r in records] == in_process_rows(texts)


GATED = """
import pathlib, time
from hypernodes import Pipeline, node

@node(output_name="echo")
def wait_then_echo(x: int, gate: str) -> int:
    # item 1 waits until the test has read the line of item 0
    deadline = time.monotonic() + 60
    while x == 1 and not pathlib.Path(gate).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the first row was never read")
        time.sleep(0.01)
    return x

pipeline = Pipeline([wait_then_echo], name="gated")
"""


@pytest.mark.skipif(
    not hasattr(Pipeline, "imap"), reason="Pipeline.imap is not there yet: jsonl prints at the end"
)
def test_jsonl_rows_arrive_while_the_map_runs(tmp_path: Path) -> None:
    (tmp_path / "gated.py").write_text(GATED)
    gate = tmp_path / "gate"
    args = ["run", "gated.py", "--map-over", "x", "-i", "x=[0, 1]", "-i", f"gate={gate}"]
    process = subprocess.Popen(
        [HN, *args, "--format", "jsonl"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timer = threading.Timer(90, process.kill)
    timer.start()
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # arrives although item 1 is still waiting
        assert json.loads(first) == {"index": 0, "outputs": {"echo": 0}}
        gate.touch()
        rest, errors = process.communicate()
    finally:
        timer.cancel()
    assert process.returncode == 0, errors
    assert json.loads(rest) == {"index": 1, "outputs": {"echo": 1}}


def test_table_format() -> None:
    result = ok(
        "run", TEXT, "--map-over", "text", "-i", 'text=["a b", "c d e"]', "--format", "table",
        "--output", "n_words", "--output", "longest",
    )  # fmt: skip
    body = [line for line in result.stdout.splitlines() if "│" in line]
    assert [line.split("│")[1:4] for line in body] == [
        [" 0 ", " 2       ", " a       "],
        [" 1 ", " 3       ", " c       "],
    ]
    assert "n_words" in result.stdout and "longest" in result.stdout


@pytest.mark.parametrize("engine", ["threaded", "async", "parallel"])
def test_engines_give_the_same_rows(engine: str) -> None:
    texts = ["a b", "c", "d e f g", "h i", "j"]
    args = ["run", TEXT, "--map-over", "text", "-i", f"text={json.dumps(texts)}"]
    result = ok(*args, "--engine", engine, "--format", "jsonl")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["outputs"] for r in records] == in_process_rows(texts)


@pytest.mark.parametrize(("engine", "class_name"), [("dask", "DaskEngine"), ("daft", "DaftEngine")])
def test_dask_and_daft_engines_or_one_clear_line(engine: str, class_name: str) -> None:
    result = hn("run", TEXT, "--map-over", "text", "-i", 'text=["a b"]', "--engine", engine)
    try:
        getattr(engines, class_name)()
    except (AttributeError, ImportError):
        one_line_error(result, 1, f"--engine {engine}")
    else:  # the engine is there and its extra installed
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)[0]["n_words"] == 2


def test_cache_makes_the_second_run_all_hits(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = ["run", TEXT, "--map-over", "text", "-i", 'text=["a b", "c"]', "--cache", str(cache)]
    first = ok(*args, "--progress")
    info = json.loads(ok("cache", "info", str(cache), "--format", "json").stdout)
    assert info["entries"] == 2 * 4  # two items, four outputs each
    second = ok(*args, "--progress")
    assert second.stdout == first.stdout
    assert "2 cached" in second.stderr and "cached" not in first.stderr
    assert json.loads(ok("cache", "info", str(cache), "--format", "json").stdout) == info


def test_progress_goes_to_stderr_and_keeps_stdout_json() -> None:
    result = ok("run", TEXT, "--map-over", "text", "-i", 'text=["a", "b"]', "--progress")
    assert json.loads(result.stdout)[1]["cleaned"] == "b"
    assert "2/2" in result.stderr


def test_on_error_continue_reports_failed_items() -> None:
    args = ["run", CHECKED, "--map-over", "x", "-i", "x=[4, -1, 9]", "--on-error", "continue"]
    records = [json.loads(line) for line in ok(*args, "--format", "jsonl").stdout.splitlines()]
    assert records[0] == {"index": 0, "outputs": {"root": 2.0}}
    assert records[1]["error"] == "ValueError: cannot take the square root of -1"
    assert records[1]["outputs"]["root"]["node"] == "square_root"
    assert records[2] == {"index": 2, "outputs": {"root": 3.0}}
    rows = json.loads(ok(*args).stdout)
    assert rows[1]["root"]["error"].startswith("ValueError")


def test_values_json_cannot_hold_are_shown_by_repr_with_a_note() -> None:
    result = ok("run", f"{EXAMPLES}:ratio", "-i", "numerator=1")
    assert json.loads(result.stdout) == {"ratio": "Fraction(1, 3)"}
    assert "Fraction" in result.stderr and "not JSON" in result.stderr


# ---------------------------------------------------------------------------------------------
# run: every error path is one line


def test_errors_naming_the_target(tmp_path: Path) -> None:
    one_line_error(hn("run", "no_such_module_xyz:pipeline"), 2, "no_such_module_xyz")
    one_line_error(hn("run", str(tmp_path / "missing.py:pipeline")), 2, "no such file")
    one_line_error(hn("run", f"{EXAMPLES}:nope", "-i", "x=1"), 2, "'nope'", "text")
    one_line_error(hn("run", f"{EXAMPLES}:Fraction"), 2, "not a Pipeline")
    one_line_error(hn("run", f"{EXAMPLES}:clean"), 2, "a node, not a Pipeline")
    (tmp_path / "broken.py").write_text("import no_such_dependency_xyz\n")
    one_line_error(hn("run", str(tmp_path / "broken.py")), 2, "no_such_dependency_xyz")
    (tmp_path / "needs.py").write_text("def build(size):\n    pass\n")
    one_line_error(hn("run", f"{tmp_path / 'needs.py'}:build"), 2, "needs arguments", "size")
    (tmp_path / "empty.py").write_text("x = 1\n")
    one_line_error(hn("run", str(tmp_path / "empty.py")), 2, "no attribute 'pipeline'")


def test_errors_about_inputs(tmp_path: Path) -> None:
    one_line_error(hn("run", TEXT), 2, "missing input", "text", "-i text=")
    one_line_error(hn("run", TEXT, "-i", "txt=a"), 2, "'txt'", "did you mean 'text'")
    one_line_error(hn("run", TEXT, "-i", "no-equals-sign"), 2, "NAME=VALUE")
    one_line_error(hn("run", TEXT, "--inputs", str(tmp_path / "none.json")), 2, "no such file")
    (tmp_path / "inputs.csv").write_text("text\n")
    one_line_error(hn("run", TEXT, "--inputs", str(tmp_path / "inputs.csv")), 2, ".json")
    (tmp_path / "bad.json").write_text("{not json")
    one_line_error(hn("run", TEXT, "--inputs", str(tmp_path / "bad.json")), 2, "cannot parse")
    (tmp_path / "list.json").write_text("[1, 2]")
    one_line_error(hn("run", TEXT, "--inputs", str(tmp_path / "list.json")), 2, "mapping")
    (tmp_path / "bad.yaml").write_text("text: [unclosed\n")
    one_line_error(hn("run", TEXT, "--inputs", str(tmp_path / "bad.yaml")), 2, "cannot parse")


def test_errors_about_options() -> None:
    one_line_error(hn("run", TEXT, "-i", "text=a", "--output", "n_word"), 2, "did you mean")
    one_line_error(hn("run", TEXT, "-i", "text=a", "--format", "xml"), 2, "'xml'", "--help")
    one_line_error(hn("run", TEXT, "--map-over", "text"), 2, "--map-over text")
    one_line_error(hn("run", TEXT, "-i", "text=a", "--on-error", "continue"), 2, "--map-over")
    one_line_error(
        hn("run", TEXT, "--map-over", "text", "--map-over", "lowercase",
           "-i", 'text=["a", "b"]', "-i", "lowercase=[true]"),
        2, "zip",
    )  # fmt: skip
    one_line_error(hn("run", TEXT, "--map-over", "text", "-i", "text=5"), 2, "sequence")
    one_line_error(hn("bogus"), 2, "bogus")


def test_a_failing_node_is_one_line_and_traceback_on_request() -> None:
    line = one_line_error(hn("run", CHECKED, "-i", "x=-4"), 1, "ValueError")
    assert "square root of -4" in line and "square_root" in line
    line = one_line_error(hn("run", CHECKED, "--map-over", "x", "-i", "x=[1, -4]"), 1, "item 1")
    for args in (["--traceback", "run", CHECKED], ["run", CHECKED, "--traceback"]):
        result = hn(*args, "-i", "x=-4")
        assert result.returncode == 1
        assert "Traceback (most recent call last)" in result.stderr
        assert 'raise ValueError(f"cannot take the square root of {x}")' in result.stderr


def test_a_type_mismatch_in_the_target_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "mismatch.py").write_text(
        textwrap.dedent(
            """
            from hypernodes import Pipeline, node

            @node(output_name="n")
            def count(text: str) -> int:
                return len(text)

            @node(output_name="shout")
            def shout(n: str) -> str:
                return n.upper()

            pipeline = Pipeline([count, shout])
            """
        )
    )
    one_line_error(hn("run", "mismatch.py", cwd=tmp_path), 2, "TypeMismatchError", "'count'")


# ---------------------------------------------------------------------------------------------
# describe and viz


def test_describe_text() -> None:
    out = ok("describe", CORPUS).stdout
    assert out.splitlines()[:5] == [
        "pipeline 'corpus': 2 nodes",
        "inputs:",
        "  required: texts: list[str]",
        "  optional: lowercase: bool = True",
        "  bound:    -",
    ]
    assert "maps over texts (zip); input texts -> text; output n_words -> counts" in out
    assert "        measure(words: list[str]) -> n_words: int, longest: str" in out
    assert "  total(counts: list[int]) -> total_words: int" in out
    ratio = ok("describe", f"{EXAMPLES}:ratio").stdout
    assert "  bound:    denominator: int = 3" in ratio


def test_describe_json() -> None:
    data = json.loads(ok("describe", CORPUS, "--format", "json").stdout)
    assert data["inputs"]["required"] == [{"name": "texts", "type": "list[str]"}]
    assert data["inputs"]["optional"] == [{"name": "lowercase", "type": "bool", "default": True}]
    nested = data["nodes"][0]
    assert nested["kind"] == "pipeline" and nested["map_over"] == ["texts"]
    assert nested["pipeline"]["name"] == "text"
    clean = nested["pipeline"]["nodes"][0]
    assert clean["function"] == "cli_pipelines.clean"
    assert clean["options"] == {
        "cache": True,
        "cache_version": None,
        "retries": 0,
        "retry_on": [],  # nothing is retried: no retries
        "timeout": None,
        "resources": None,
    }
    assert clean["inputs"][1] == {"name": "lowercase", "type": "bool", "default": True}


def test_viz_writes_pictures(tmp_path: Path) -> None:
    dot = tmp_path / "corpus.dot"
    assert ok("viz", CORPUS, "-o", str(dot), "--depth", "all", "--orient", "LR").stdout.strip() == (
        f"wrote {dot}"
    )
    source = dot.read_text()
    assert "rankdir=LR" in source and "measure" in source  # the nested level is drawn
    svg = tmp_path / "corpus.svg"
    ok("viz", CORPUS, "-o", str(svg))
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_viz_errors() -> None:
    one_line_error(hn("viz", CORPUS, "-o", "picture.txt"), 2, "extensions")
    one_line_error(hn("viz", CORPUS, "-o", "x.svg", "--depth", "0"), 2, "'all'")
    one_line_error(hn("viz", CORPUS), 2, "-o")


# ---------------------------------------------------------------------------------------------
# cache


def test_cache_info_and_clear(tmp_path: Path) -> None:
    cache = tmp_path / "c"
    ok("run", TEXT, "-i", "text=a b", "--cache", str(cache))
    text = ok("cache", "info", str(cache)).stdout
    assert "entries: 4" in text and "size:" in text and "oldest:  20" in text
    info = json.loads(ok("cache", "info", str(cache), "--format", "json").stdout)
    assert info["entries"] == 4 and info["size_bytes"] > 0
    assert info["oldest"] <= info["newest"]

    # no answer (stdin closed: exit 1) and "n" (an answer: exit 0) delete nothing; "y" and --yes do
    refused = hn("cache", "clear", str(cache))
    assert refused.returncode == 1 and "nothing deleted" in refused.stderr
    declined = hn("cache", "clear", str(cache), stdin="n\n")
    assert declined.returncode == 0 and "nothing deleted" in declined.stderr
    assert json.loads(ok("cache", "info", str(cache), "--format", "json").stdout)["entries"] == 4
    assert ok("cache", "clear", str(cache), stdin="y\n").stdout.strip() == (
        f"deleted 4 entries from {cache}"
    )
    ok("run", TEXT, "-i", "text=a b", "--cache", str(cache))
    assert "deleted 4 entries" in ok("cache", "clear", str(cache), "--yes").stdout
    assert "entries: 0" in ok("cache", "info", str(cache)).stdout


def test_cache_errors(tmp_path: Path) -> None:
    one_line_error(hn("cache", "info", str(tmp_path / "none")), 1, "not a directory")
    one_line_error(hn("cache", "clear", str(tmp_path), "--yes"), 1, "cache.db")
    assert not (tmp_path / "cache.db").exists()  # looking did not make one


# ---------------------------------------------------------------------------------------------
# what the command reads and prints, in-process


def test_assignments_parse_as_json_else_as_strings() -> None:
    from hypernodes.cli.io import UsageProblem, parse_assignment

    assert parse_assignment("n=3") == ("n", 3)
    assert parse_assignment("xs=[1, 2]") == ("xs", [1, 2])
    assert parse_assignment("flag=true") == ("flag", True)
    assert parse_assignment('code="007"') == ("code", "007")
    assert parse_assignment("code=007") == ("code", "007")  # not JSON: the string
    assert parse_assignment("text=a=b") == ("text", "a=b")
    assert parse_assignment("empty=") == ("empty", "")
    for bad in ("novalue", "=3", "two words=1"):
        with pytest.raises(UsageProblem):
            parse_assignment(bad)


def test_encoder_numpy_item_errors_and_other_values() -> None:
    import numpy as np

    from hypernodes import ItemError
    from hypernodes.cli.io import JsonEncoder

    encoder = JsonEncoder()
    error = ItemError(ValueError("bad"), "check", 3)
    text = encoder.dumps({"a": np.arange(3), "b": np.float64(0.5), "c": error, "d": {1, 2}})
    assert json.loads(text) == {
        "a": [0, 1, 2],
        "b": 0.5,
        "c": {"error": "ValueError: bad", "node": "check", "item": 3},
        "d": "{1, 2}",
    }
    assert list(encoder.not_json) == ["set"]


def test_cache_why_names_hits_and_misses(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ok("run", TEXT, "--map-over", "text", "-i", 'text=["a b"]', "--cache", str(cache))
    why = ok(
        "cache", "why", TEXT, "--map-over", "text", "-i", 'text=["a b", "c"]', "--cache", str(cache)
    )
    lines = why.stdout.splitlines()
    assert lines[0].split() == ["node", "item", "status", "reason"]
    assert any(line.split()[1:3] == ["0", "hit"] for line in lines[1:])
    assert any(line.split()[1:3] == ["1", "miss"] and "input 'text'" in line for line in lines[1:])
    no_cache = hn("cache", "why", TEXT, "-i", "text=a")
    assert no_cache.returncode != 0 and "--cache" in no_cache.stderr
