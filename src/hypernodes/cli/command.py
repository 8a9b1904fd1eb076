"""The ``hypernodes`` command: run, draw and describe pipelines, and look after disk caches, from
the shell.

Built on click.  A pipeline is named by a target, ``module:attr`` or ``path/to/file.py:attr``,
whose attribute is a ``Pipeline`` or a function returning one.  Errors print as one line on stderr
with a non-zero exit (1: the pipeline or a tool failed; 2: bad arguments, target or inputs) unless
``--traceback`` asks for the whole traceback.  ``import hypernodes`` never imports this module.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from .. import __version__, engines
from ..cache import DiskCache
from ..engines import HypernodesEngine
from ..exceptions import HyperNodesError, MapError, MissingInputError, UnknownOutputError
from ..model.node import Node
from ..model.pipeline import Pipeline
from ..model.typecheck import compatible, describe_type
from ..telemetry.progress import ProgressCallback
from ..viz.graphviz import FORMATS as PICTURE_FORMATS
from .io import (
    CommandFailure,
    JsonEncoder,
    UsageProblem,
    cache_summary,
    describe_pipeline,
    describe_text,
    format_bytes,
    input_hints,
    parse_assignment,
    read_inputs_file,
)
from .runs import register as register_runs

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

ENGINES = ("sequential", "threaded", "async", "parallel", "dask", "daft")
FORMATS = ("json", "table", "jsonl")

_MAIN_EXAMPLES = """\b
Examples:
  hypernodes run examples/cli_pipelines.py:text -i text="Hello big world"
  hypernodes run my_package.flows:pipeline --inputs inputs.yaml --output report
  hypernodes run examples/cli_pipelines.py:text --map-over text \\
      -i 'text=["a b", "c d e"]' --format jsonl
  hypernodes describe examples/cli_pipelines.py:corpus
  hypernodes viz examples/cli_pipelines.py:corpus -o corpus.svg --depth 2
  hypernodes cache info .cache/hypernodes
  hypernodes runs show runs/ last
"""


def _traceback_option(func: Any) -> Any:
    """``--traceback`` on every (sub)command; :func:`main` reads it from the arguments."""
    return click.option(
        "--traceback",
        is_flag=True,
        expose_value=False,
        help="On an error, print the full traceback instead of one line.",
    )(func)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_MAIN_EXAMPLES,
)
@click.version_option(__version__, prog_name="hypernodes")
@_traceback_option
def cli() -> None:
    """Run, draw and describe HyperNodes pipelines, and manage their disk caches.

    TARGET names a pipeline as module:attr or path/to/file.py:attr; the attribute is a Pipeline
    or a function (taking no arguments) that returns one.  Without :attr, the attribute
    'pipeline' is used.
    """


# ---------------------------------------------------------------------------------------------
# run


_RUN_EXAMPLES = """\b
Examples:
  hypernodes run examples/cli_pipelines.py:text -i text="Hello big world"
  hypernodes run examples/cli_pipelines.py:text -i text="Hello" -i lowercase=false
  hypernodes run examples/cli_pipelines.py:text --inputs inputs.json --output n_words
  hypernodes run examples/cli_pipelines.py:text --map-over text \\
      -i 'text=["a b", "c d e"]' --format jsonl
  hypernodes run examples/cli_pipelines.py:text --map-over text \\
      -i 'text=["a b", "c"]' --engine threaded --cache .cache/text --format table

\b
-i values are read as JSON when they parse (42, true, null, [1, 2], {"a": 1}, "quoted"),
else as plain strings.  --inputs reads a .json, .yaml/.yml or .toml file of name: value pairs;
-i values override it.
"""


@cli.command(epilog=_RUN_EXAMPLES)
@click.argument("target")
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A .json, .yaml/.yml or .toml file of inputs.",
)
@click.option(
    "-i",
    "--input",
    "assignments",
    multiple=True,
    metavar="NAME=VALUE",
    help="One input; VALUE is JSON if it parses, else a string.  Repeatable.",
)
@click.option(
    "--map-over",
    "map_over",
    multiple=True,
    metavar="NAME",
    help="Map over this input (a list); repeat for several.",
)
@click.option(
    "--map-mode",
    type=click.Choice(["zip", "product"]),
    default="zip",
    show_default=True,
    help="Pair the mapped lists item by item, or run every combination.",
)
@click.option(
    "--output",
    "outputs",
    multiple=True,
    metavar="NAME",
    help="Compute only this output (and what it needs); repeatable.  Default: all.",
)
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="sequential",
    show_default=True,
    help="How map items run: threaded/async/parallel set HypernodesEngine's map executor.",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Cache results in this directory (a DiskCache).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress on stderr.  Default: when stderr is a terminal.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="json",
    show_default=True,
    help="JSON, a table, or one JSON line per map item, printed as each finishes.",
)
@click.option(
    "--on-error",
    type=click.Choice(["raise", "continue"]),
    default="raise",
    show_default=True,
    help="With --map-over: stop at the first failing item, or run every item and report errors.",
)
@_traceback_option
def run(
    target: str,
    inputs_file: Path | None,
    assignments: tuple[str, ...],
    map_over: tuple[str, ...],
    map_mode: str,
    outputs: tuple[str, ...],
    engine: str,
    cache_dir: Path | None,
    progress: bool | None,
    output_format: str,
    on_error: str,
) -> None:
    """Run the pipeline TARGET once, or once per item with --map-over, and print the outputs."""
    pipeline = load_target(target)
    inputs = read_inputs_file(inputs_file) if inputs_file is not None else {}
    for text in assignments:
        name, value = parse_assignment(text)
        inputs[name] = value
    _check_input_names(pipeline, inputs, map_over, outputs)
    _check_text_inputs(pipeline, inputs, assignments, map_over)
    if on_error == "continue" and not map_over:
        raise UsageProblem("--on-error continue applies to maps: add --map-over NAME")
    output_name = list(outputs) or None

    pipeline, engine_object = _configure(pipeline, engine, cache_dir, progress)
    encoder = JsonEncoder()
    try:
        if not map_over:
            result = pipeline.run(inputs, output_name=output_name)
            _print_result(result, output_format, encoder)
        elif output_format == "jsonl":
            rows = _stream_rows(pipeline, inputs, list(map_over), map_mode, output_name, on_error)
            for index, row in rows:
                click.echo(encoder.dumps_row(index, row))
                sys.stdout.flush()
        else:
            rows_list = pipeline.map(
                inputs,
                map_over=list(map_over),
                map_mode=map_mode,
                output_name=output_name,
                on_error=on_error,
            )
            _print_rows(rows_list, output_format, encoder)
    finally:
        if engine_object is not None:
            _close_engine(engine_object)
        if cache_dir is not None:
            pipeline.cache.close()
        encoder.print_notes()


def _close_engine(engine: Any) -> None:
    """Stop the workers of an engine the command made (``shutdown``, or ``close``)."""
    for method in ("shutdown", "close"):
        stop = getattr(engine, method, None)
        if callable(stop):
            stop()
            return


def _configure(
    pipeline: Any, engine: str, cache_dir: Path | None, progress: bool | None
) -> tuple[Any, Any]:
    """The pipeline with the engine, cache and progress the options ask for, and the engine made
    (to shut down afterwards)."""
    engine_object = make_engine(engine)
    if engine_object is not None:
        pipeline = pipeline.with_engine(engine_object)
    if cache_dir is not None:
        pipeline = pipeline.with_cache(DiskCache(cache_dir))
    show = sys.stderr.isatty() if progress is None else progress
    if show:  # rich bars on a terminal; plain lines without rich or off a terminal
        callback = ProgressCallback()
        pipeline = pipeline.with_callbacks([*(pipeline.callbacks or []), callback])
    return pipeline, engine_object


def make_engine(name: str) -> Any:
    """The engine ``--engine NAME`` asks for (``None``: the pipeline's own)."""
    if name == "sequential":
        return None
    if name in ("threaded", "async", "parallel"):
        return HypernodesEngine(map_executor=name)
    class_name = {"dask": "DaskEngine", "daft": "DaftEngine"}[name]
    try:
        engine_class = getattr(engines, class_name)
    except ImportError as exc:
        raise CommandFailure(
            f"--engine {name} needs the {name} extra: pip install 'hypernodes[{name}]' ({exc})"
        ) from exc
    except AttributeError:
        raise CommandFailure(
            f"--engine {name}: this version of hypernodes has no {class_name}; "
            "use sequential, threaded, async or parallel"
        ) from None
    try:
        return engine_class()
    except ImportError as exc:
        raise CommandFailure(
            f"--engine {name} needs the {name} extra: pip install 'hypernodes[{name}]' ({exc})"
        ) from exc


def _check_input_names(
    pipeline: Any, inputs: Mapping[str, Any], map_over: Sequence[str], outputs: Sequence[str]
) -> None:
    known = set(pipeline.root_args) | set(pipeline.output_names)
    for name in inputs:
        if name not in known:
            raise UsageProblem(
                f"pipeline {pipeline.label!r} takes no input {name!r}{_did_you_mean(name, known)}; "
                f"its inputs are: {', '.join(pipeline.root_args) or '(none)'}"
            )
    for name in map_over:
        if name not in inputs:
            raise UsageProblem(
                f"--map-over {name}: give its list with -i {name}=[...] or in --inputs"
            )
    for name in outputs:
        if name not in pipeline.output_names:
            raise UsageProblem(
                f"pipeline {pipeline.label!r} has no output {name!r}"
                f"{_did_you_mean(name, pipeline.output_names)}; its outputs are: "
                f"{', '.join(pipeline.output_names)}"
            )


def _check_text_inputs(
    pipeline: Any, inputs: Mapping[str, Any], assignments: Sequence[str], map_over: Sequence[str]
) -> None:
    """Refuse a ``-i NAME=VALUE`` that was read as a plain string (it is not JSON) for an input
    whose annotation a string cannot be (``list[str]``, ``int``, ...): it would run with the
    wrong value."""
    given = {text.partition("=")[0].strip() for text in assignments}
    hints = input_hints(pipeline)
    for name in given:
        value, hint = inputs.get(name), hints.get(name)
        if not isinstance(value, str) or hint is None or name in map_over:
            continue
        if not compatible(str, hint):
            shown = describe_type(hint)
            example = json.dumps([value]) if "list" in shown or "Sequence" in shown else "..."
            raise UsageProblem(
                f"-i {name}={value}: input {name!r} is {shown}, but {value!r} is not JSON, so it "
                f"would be passed as a string; write the value as JSON, e.g. -i '{name}={example}'"
            )


def _did_you_mean(name: str, choices: Any) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _stream_rows(
    pipeline: Any,
    inputs: dict[str, Any],
    map_over: list[str],
    map_mode: str,
    output_name: list[str] | None,
    on_error: str,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, row)`` as items finish, in input order: ``Pipeline.imap`` where there is one."""
    imap = getattr(pipeline, "imap", None)
    if imap is not None:
        options: dict[str, Any] = {"map_mode": map_mode, "output_name": output_name}
        accepted = inspect.signature(imap).parameters
        if "ordered" in accepted:
            options["ordered"] = True
        if on_error != "raise" and "on_error" in accepted:
            options["on_error"] = on_error
        if on_error == "raise" or "on_error" in accepted:
            yield from imap(inputs, map_over, **options)
            return
    rows = pipeline.map(
        inputs, map_over=map_over, map_mode=map_mode, output_name=output_name, on_error=on_error
    )
    yield from enumerate(rows)


def _print_result(result: Mapping[str, Any], output_format: str, encoder: JsonEncoder) -> None:
    if output_format == "table":
        _print_table(
            ["output", "value"], [[name, value] for name, value in result.items()], encoder
        )
    elif output_format == "jsonl":
        click.echo(encoder.dumps(dict(result)))
    else:
        click.echo(encoder.dumps(dict(result), indent=2))


def _print_rows(rows: list[dict[str, Any]], output_format: str, encoder: JsonEncoder) -> None:
    if output_format == "table":
        names = list(rows[0]) if rows else []
        table = [[index, *(row[n] for n in names)] for index, row in enumerate(rows)]
        _print_table(["#", *names], table, encoder)
    else:
        click.echo(encoder.dumps(rows, indent=2))


def _print_table(header: list[str], rows: list[list[Any]], encoder: JsonEncoder) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError as exc:
        raise CommandFailure(
            "--format table needs the rich package: pip install 'hypernodes[cli]'"
        ) from exc
    table = Table(*header)
    for row in rows:
        table.add_row(*(encoder.cell(value) for value in row))
    Console(soft_wrap=False).print(table)


# ---------------------------------------------------------------------------------------------
# viz and describe


_VIZ_EXAMPLES = """\b
Examples:
  hypernodes viz examples/cli_pipelines.py:corpus -o corpus.svg
  hypernodes viz examples/cli_pipelines.py:corpus -o corpus.png --depth all --orient LR
  hypernodes viz examples/cli_pipelines.py:text -o text.dot

\b
The extension picks the format: .svg, .png, .pdf (rendered with graphviz's dot program), or
.dot/.gv (the DOT source, no dot needed).
"""


class _Depth(click.ParamType):  # type: ignore[type-arg,unused-ignore]  # generic from click 8.2
    """``--depth``: a positive integer, or ``all``."""

    name = "N|all"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | None:
        if value is None or (isinstance(value, int) and value >= 1):
            return value
        if str(value).lower() == "all":
            return None
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            self.fail(f"{value!r} is not a positive integer or 'all'", param, ctx)
        return number


@cli.command(epilog=_VIZ_EXAMPLES)
@click.argument("target")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the picture (.svg, .png, .pdf, .dot, .gv).",
)
@click.option(
    "--depth",
    type=_Depth(),
    default=1,
    show_default=True,
    help="Nesting levels to open, or 'all'.",
)
@click.option(
    "--orient",
    type=click.Choice(["TB", "LR", "BT", "RL"], case_sensitive=False),
    default="TB",
    show_default=True,
    help="Direction of flow.",
)
@click.option("--flatten", is_flag=True, help="Draw every level without boxes around them.")
@_traceback_option
def viz(target: str, output: Path, depth: int | None, orient: str, flatten: bool) -> None:
    """Draw the pipeline TARGET to a picture file."""
    if output.suffix.lower() not in PICTURE_FORMATS:
        raise UsageProblem(
            f"-o {output}: cannot tell the picture format from {output.suffix or 'no extension'}; "
            f"use one of the extensions {', '.join(sorted(PICTURE_FORMATS))}"
        )
    pipeline = load_target(target)
    pipeline.visualize(filename=output, orient=orient.upper(), depth=depth, flatten=flatten)
    click.echo(f"wrote {output}")


_DESCRIBE_EXAMPLES = """\b
Examples:
  hypernodes describe examples/cli_pipelines.py:text
  hypernodes describe examples/cli_pipelines.py:corpus --format json
  hypernodes describe examples/cli_pipelines.py:text --upstream-of NAME
"""


@cli.command(epilog=_DESCRIBE_EXAMPLES)
@click.argument("target")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Readable text, or JSON for tools.",
)
@click.option(
    "--upstream-of",
    "upstream",
    multiple=True,
    metavar="NAME",
    help="Only what NAME (a node or value; repeatable) is computed from.",
)
@_traceback_option
def describe(target: str, output_format: str, upstream: tuple[str, ...]) -> None:
    """Show the inputs (required, optional with defaults, bound), outputs, nodes with their
    parameters, types and options, and nested pipelines of TARGET."""
    pipeline = load_target(target)
    lineage = None
    if upstream:
        lineage = pipeline.upstream_of(*upstream)
        kept = set(lineage.nodes)
        outputs = [out for item in pipeline.nodes if item.name in kept for out in item.outputs]
        pipeline = pipeline.subpipeline(outputs=outputs)
    description = describe_pipeline(pipeline)
    if pipeline.variants:
        description["variants"] = pipeline.variants
    if lineage is not None:
        description["upstream_of"] = {
            "names": list(upstream),
            "nodes": list(lineage.nodes),
            "values": list(lineage.values),
        }
    if output_format == "json":
        click.echo(JsonEncoder().dumps(description, indent=2))
        return
    if lineage is not None:
        click.echo(f"upstream of {', '.join(upstream)}:")
        click.echo(f"  nodes:  {', '.join(lineage.nodes) or '-'}")
        click.echo(f"  values: {', '.join(lineage.values) or '-'}")
    click.echo(describe_text(description))
    for outputs, group in pipeline.variants.items():
        shown = [f"{v} (chosen)" if v == group["chosen"] else v for v in group["variants"]]
        click.echo(f"variants of {outputs}: {', '.join(shown)}")


_SERVE_EXAMPLES = """\b
Examples:
  hypernodes serve examples/cli_pipelines.py:text
  hypernodes serve examples/cli_pipelines.py:text --port 8080
  curl -X POST localhost:8080/run -H 'content-type: application/json' -d '{"inputs": {"text": "a b"}}'
"""


@cli.command(epilog=_SERVE_EXAMPLES)
@click.argument("target")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port (0: a free one).")
@_traceback_option
def serve(target: str, host: str, port: int) -> None:
    """Serve TARGET over HTTP: POST /run and POST /map with JSON bodies, OpenAPI at
    /openapi.json (needs the serve extra)."""
    from .. import serving

    pipeline = load_target(target)
    serving.serve(
        pipeline,
        host=host,
        port=port,
        ready=lambda url: click.echo(f"serving {pipeline.label!r} on {url}", err=True),
    )


# ---------------------------------------------------------------------------------------------
# cache


@cli.group(
    epilog="""\b
Examples:
  hypernodes cache info .cache/hypernodes
  hypernodes cache clear .cache/hypernodes --yes
  hypernodes cache why pipeline.py -i x=3 --cache .cache/hypernodes
"""
)
@_traceback_option
def cache() -> None:
    """Inspect or empty a DiskCache directory, or explain a pipeline's hits and misses."""


def _open_cache(directory: Path) -> Any:
    if not directory.is_dir():
        raise CommandFailure(f"no cache at {directory}: it is not a directory")
    if not (directory / "cache.db").is_file():
        raise CommandFailure(f"no cache at {directory}: it holds no cache.db (not a DiskCache)")
    return DiskCache(directory)


@cache.command("info", epilog="\b\nExample:\n  hypernodes cache info .cache/hypernodes\n")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
@_traceback_option
def cache_info(directory: Path, output_format: str) -> None:
    """Entries, size on disk, and the oldest and newest entry of the cache in DIRECTORY."""
    store = _open_cache(directory)
    try:
        summary = cache_summary(store, directory)
    finally:
        store.close()
    if output_format == "json":
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"cache:   {directory}")
    click.echo(f"entries: {summary['entries']}")
    click.echo(f"size:    {format_bytes(summary['size_bytes'])} ({summary['size_bytes']} bytes)")
    click.echo(f"oldest:  {summary['oldest'] or '-'}")
    click.echo(f"newest:  {summary['newest'] or '-'}")


@cache.command(
    "clear",
    epilog="\b\nExamples:\n  hypernodes cache clear .cache/hypernodes\n"
    "  hypernodes cache clear .cache/hypernodes --yes\n",
)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@_traceback_option
def cache_clear(directory: Path, yes: bool) -> None:
    """Delete every entry of the cache in DIRECTORY (asks first unless --yes)."""
    store = _open_cache(directory)
    try:
        count = len(store)
        if not yes:
            question = (
                f"Delete {count} entr{'y' if count == 1 else 'ies'} "
                f"({format_bytes(store.volume())}) from {directory}?"
            )
            try:
                agreed = click.confirm(question, default=False, err=True)
            except click.exceptions.Abort as exc:  # no answer: stdin closed, or Ctrl-C
                click.echo(err=True)
                if isinstance(exc.__context__, KeyboardInterrupt):
                    raise KeyboardInterrupt from None
                raise CommandFailure(
                    "nothing deleted: no answer (answer y, or pass --yes)"
                ) from None
            if not agreed:  # "n" is an answer, not a failure
                click.echo("nothing deleted", err=True)
                return
        store.clear()
    finally:
        store.close()
    click.echo(f"deleted {count} entr{'y' if count == 1 else 'ies'} from {directory}")


@cache.command(
    "why",
    epilog="\b\nExamples:\n  hypernodes cache why pipeline.py -i x=3 --cache .cache/hypernodes\n"
    "  hypernodes cache why etl:pipeline -i 'x=[1, 2]' --map-over x\n",
)
@click.argument("target")
@click.option(
    "--inputs",
    "inputs_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A .json, .yaml/.yml or .toml file of inputs.",
)
@click.option(
    "-i", "--input", "assignments", multiple=True, metavar="NAME=VALUE", help="One input."
)
@click.option("--map-over", "map_over", multiple=True, metavar="NAME", help="Mapped input.")
@click.option("--output", "outputs", multiple=True, metavar="NAME", help="Only this output.")
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The DiskCache directory (default: the pipeline's own cache).",
)
@_traceback_option
def cache_why(
    target: str,
    inputs_file: Path | None,
    assignments: tuple[str, ...],
    map_over: tuple[str, ...],
    outputs: tuple[str, ...],
    cache_dir: Path | None,
) -> None:
    """For each node of TARGET: would a run load it from the cache (hit), compute it (miss) or
    never cache it (uncached), and why - the function, helper, input or upstream node changed."""
    pipeline = load_target(target)
    inputs = read_inputs_file(inputs_file) if inputs_file is not None else {}
    for text in assignments:
        name, value = parse_assignment(text)
        inputs[name] = value
    _check_input_names(pipeline, inputs, map_over, outputs)
    if cache_dir is not None:
        pipeline = pipeline.with_cache(DiskCache(cache_dir))
    if pipeline.cache is None:
        raise UsageProblem(f"{target} has no cache: pass --cache DIRECTORY")
    try:
        report = pipeline.explain_cache(
            inputs, map_over=list(map_over) or None, output_name=list(outputs) or None
        )
    finally:
        if cache_dir is not None:
            pipeline.cache.close()
    click.echo(str(report))


# ---------------------------------------------------------------------------------------------
# Targets


def load_target(target: str) -> Any:
    """The pipeline a ``module:attr`` or ``path/to/file.py:attr`` target names."""
    source, attr = _split_target(target)
    module = _import_source(source)
    found = _target_attribute(module, source, attr)
    if isinstance(found, Node):
        raise UsageProblem(
            f"{target} is a node, not a Pipeline; put it in one: Pipeline([{found.name}])"
        )
    if not isinstance(found, Pipeline) and callable(found) and not isinstance(found, type):
        found = _call_factory(target, found)
    if not isinstance(found, Pipeline):
        raise UsageProblem(f"{target} is a {type(found).__name__}, not a Pipeline")
    return found


def _split_target(target: str) -> tuple[str, str]:
    """``(source, attr)`` of a target; ``attr`` is ``""`` when the target names none."""
    source, sep, attr = target.rpartition(":")
    if not sep or not source or os.sep in attr or "/" in attr:
        source, attr = target, ""
    if not source:
        raise UsageProblem(f"target {target!r} names nothing: use module:attr or file.py:attr")
    return source, attr


def _target_attribute(module: Any, source: str, attr: str) -> Any:
    """The (dotted) attribute ``attr`` of ``module``; without one, its ``pipeline``."""
    if not attr:
        attr = "pipeline"
        if not hasattr(module, attr):
            raise UsageProblem(
                f"{source} has no attribute 'pipeline'; name one: {source}:NAME "
                f"({_pipelines_in(module)})"
            )
    found: Any = module
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise UsageProblem(
                f"{source} has no attribute {attr!r} ({_pipelines_in(module)})"
            ) from None
    return found


def _call_factory(target: str, factory: Any) -> Any:
    """What the function a target names returns; raises if it needs arguments."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        signature = None
    required = [
        p
        for p in (signature.parameters.values() if signature else ())
        if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if required:
        raise UsageProblem(
            f"{target} is a function that needs arguments ({', '.join(p.name for p in required)});"
            " a target must be a Pipeline or a function taking no arguments"
        )
    if not _builds_pipeline(factory, signature):
        raise UsageProblem(
            f"{target} is a function that does not say it returns a Pipeline, and the command "
            "does not call a function to find out; name a Pipeline, or annotate the function "
            f"that builds one: def {getattr(factory, '__name__', 'build')}() -> Pipeline"
        )
    return factory()


def _builds_pipeline(factory: Any, signature: inspect.Signature | None) -> bool:
    """Whether a function target says it returns a Pipeline: its return annotation names one,
    or (not annotated) its code refers to ``Pipeline`` or to a pipeline of its module."""
    returns = signature.return_annotation if signature is not None else inspect.Signature.empty
    if returns is not inspect.Signature.empty:
        if isinstance(returns, str):
            return returns.rsplit(".", 1)[-1].strip("'\"") in ("Pipeline", "hypernodes.Pipeline")
        return isinstance(returns, type) and issubclass(returns, Pipeline)
    code = getattr(factory, "__code__", None)
    if code is None:
        return True  # a callable object: it says nothing, and the docs promise a call
    names = set(code.co_names)
    module_globals = getattr(factory, "__globals__", {})
    return "Pipeline" in names or any(
        isinstance(module_globals.get(name), Pipeline) for name in names
    )


def _pipelines_in(module: Any) -> str:
    names = sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline))
    return f"pipelines there: {', '.join(names)}" if names else "it defines no Pipeline"


def _import_source(source: str) -> Any:
    """Import a module by dotted name (the current directory is searched) or from a file."""
    if source.endswith(".py") or "/" in source or os.sep in source:
        return _import_file(Path(source))
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # like `python -m`: modules of the current directory
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and (source == exc.name or source.startswith(exc.name + ".")):
            raise UsageProblem(
                f"cannot find module {source!r} (searched the current directory and "
                "sys.path); for a file, give its path: path/to/file.py:attr"
            ) from exc
        raise UsageProblem(f"importing {source} failed: {_one_line(exc)}") from exc
    except Exception as exc:
        raise UsageProblem(f"importing {source} failed: {_one_line(exc)}") from exc


def _import_file(path: Path) -> Any:
    """Import ``path`` as a module named after the file; its folder joins ``sys.path`` so that
    it can import its neighbours and worker processes can import it too."""
    if not path.is_file():
        raise UsageProblem(f"no such file: {path}")
    path = path.resolve()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None:
        file = getattr(existing, "__file__", None)
        if file and Path(file).resolve() == path:
            return existing
        name = f"_hypernodes_target_{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageProblem(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise UsageProblem(f"importing {path} failed: {_one_line(exc)}") from exc
    return module


# ---------------------------------------------------------------------------------------------
# Entry point and error reporting


def _one_line(exc: BaseException) -> str:
    """``Type: message (notes)`` on one line."""
    text = " ".join(str(exc).split()) or "(no message)"
    notes = [n.removeprefix("hypernodes: ") for n in getattr(exc, "__notes__", ())]
    detail = f" ({'; '.join(' '.join(n.split()) for n in notes)})" if notes else ""
    kind = "" if type(exc) is HyperNodesError else f"{type(exc).__name__}: "
    return f"{kind}{text}{detail}"


def _usage_like(exc: BaseException) -> bool:
    return isinstance(exc, (MissingInputError, MapError, UnknownOutputError))


def _report(message: str, code: int) -> int:
    click.echo(f"hypernodes: error: {message}", err=True)
    return code


register_runs(cli)  # `runs list/show/watch` and `report`, in cli/runs.py


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit status:
    0 on success, 1 when the pipeline or a tool failed, 2 for bad arguments, target or inputs."""
    args = list(sys.argv[1:] if argv is None else argv)
    show_traceback = "--traceback" in args or os.environ.get("HYPERNODES_TRACEBACK") == "1"
    try:
        status = cli.main(args=args, prog_name="hypernodes", standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            return _report("interrupted", EXIT_INTERRUPTED)
        return _report("aborted", EXIT_FAILURE)
    except click.ClickException as exc:
        return _click_error(exc, show_traceback)
    except KeyboardInterrupt:
        return _report("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # `hypernodes run ... | head`: the reader left; say nothing more
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        return _failure(exc, show_traceback)
    return status if isinstance(status, int) else 0


def _click_error(exc: click.ClickException, show_traceback: bool) -> int:
    """Report a click error (bad arguments, or a failure raised as one) and return its status."""
    if show_traceback and exc.__cause__ is not None:
        traceback.print_exception(exc.__cause__)
    hint = ""
    ctx = (
        exc.ctx if isinstance(exc, click.UsageError) and not isinstance(exc, UsageProblem) else None
    )
    if ctx is not None:
        hint = f" (see '{ctx.command_path} --help')"
    return _report(" ".join(exc.format_message().split()) + hint, exc.exit_code)


def _failure(exc: Exception, show_traceback: bool) -> int:
    """Report an error the pipeline or a tool raised and return the exit status it calls for."""
    code = EXIT_USAGE if _usage_like(exc) else EXIT_FAILURE
    if show_traceback:
        traceback.print_exception(exc)
        return code
    return _report(_missing_input_text(exc) or _one_line(exc), code)


def _missing_input_text(exc: BaseException) -> str | None:
    if not isinstance(exc, MissingInputError) or not exc.missing:
        return None
    parts = [f"{name} (needed by {', '.join(who)})" for name, who in exc.missing.items()]
    example = next(iter(exc.missing))
    return (
        f"missing input(s): {'; '.join(parts)}; give them with -i {example}=VALUE or --inputs FILE"
    )


if __name__ == "__main__":  # pragma: no cover - ``python -m hypernodes.cli``
    raise SystemExit(main())
