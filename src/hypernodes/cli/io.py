"""What the ``hypernodes`` command reads and prints: input values and files, JSON output of
results (with a note for values JSON cannot hold), pipeline descriptions and cache summaries.

Kept apart from :mod:`hypernodes.cli` (the click commands) so that it can be tested and reused
without a command line.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from ..execution.item_error import ItemError
from ..model.node import Node
from ..model.typecheck import node_hints
from ..viz.hints import TypeHints


class UsageProblem(click.UsageError):
    """Bad arguments: an unknown target, a missing or unknown input, a value that does not parse."""


class CommandFailure(click.ClickException):
    """The command ran but could not finish (a tool is missing, the cache directory is not one)."""

    exit_code = 1


# ---------------------------------------------------------------------------------------------
# Inputs


def parse_assignment(text: str) -> tuple[str, Any]:
    """``name=value`` from ``-i``: the value as JSON when it parses, else as the string itself."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise UsageProblem(f"-i {text!r}: write NAME=VALUE, e.g. -i text=hello or -i n=3")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def read_inputs_file(path: Path) -> dict[str, Any]:
    """The inputs in a ``.json``, ``.yaml``/``.yml`` or ``.toml`` file (a mapping of names)."""
    if not path.is_file():
        raise UsageProblem(f"--inputs {path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as exc:
                raise CommandFailure(
                    f"--inputs {path}: reading YAML needs PyYAML: pip install 'hypernodes[cli]'"
                ) from exc
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        else:
            raise UsageProblem(
                f"--inputs {path}: use a .json, .yaml, .yml or .toml file (got {suffix or 'none'})"
            )
    except (ValueError, UnicodeDecodeError) as exc:  # JSON, TOML and YAML errors are ValueErrors
        raise UsageProblem(
            f"--inputs {path}: cannot parse it: {' '.join(str(exc).split())}"
        ) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("yaml"):
            raise UsageProblem(
                f"--inputs {path}: cannot parse it: {' '.join(str(exc).split())}"
            ) from exc
        raise
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise UsageProblem(f"--inputs {path}: expected a mapping of input names to values")
    return data


# ---------------------------------------------------------------------------------------------
# Output


class JsonEncoder:
    """Turns results into JSON text.  Values JSON cannot hold are written as their ``repr`` and
    noted (:meth:`print_notes`); an :class:`~hypernodes.ItemError` becomes an ``error`` object;
    numpy arrays and scalars become lists and numbers."""

    def __init__(self) -> None:
        self.not_json: dict[str, None] = {}

    def _default(self, value: Any) -> Any:
        if isinstance(value, ItemError):
            exc = value.exception
            return {
                "error": f"{type(exc).__name__}: {exc}",
                "node": value.node,
                "item": value.index,
            }
        if type(value).__module__.split(".")[0] == "numpy" and hasattr(value, "tolist"):
            return value.tolist()
        self.not_json[type(value).__qualname__] = None
        return repr(value)

    def dumps(self, value: Any, indent: int | None = None) -> str:
        """``value`` as JSON text."""
        return json.dumps(value, default=self._default, indent=indent, ensure_ascii=False)

    def dumps_row(self, index: int, row: Mapping[str, Any]) -> str:
        """One line of ``--format jsonl``: ``{"index": 0, "outputs": {...}}`` (plus ``"error"``
        when an output of the item holds an ``ItemError``)."""
        line: dict[str, Any] = {"index": index, "outputs": dict(row)}
        failed = next((v for v in row.values() if isinstance(v, ItemError)), None)
        if failed is not None:
            line["error"] = f"{type(failed.exception).__name__}: {failed.exception}"
        return self.dumps(line)

    def cell(self, value: Any) -> str:
        """A table cell: strings as they are, everything else as compact JSON."""
        if isinstance(value, str):
            return value
        return self.dumps(value)

    def print_notes(self) -> None:
        """Tell (on stderr) which types were shown by ``repr`` because JSON cannot hold them."""
        if self.not_json:
            names = ", ".join(self.not_json)
            click.echo(
                f"hypernodes: note: values of type {names} are not JSON; shown by their repr",
                err=True,
            )


# ---------------------------------------------------------------------------------------------
# Describing a pipeline


def describe_pipeline(pipeline: Any) -> dict[str, Any]:
    """A JSON-ready description of ``pipeline``: inputs (required, optional with defaults,
    bound), outputs, and nodes with parameters, types and options; nested pipelines inside."""
    return _describe(pipeline, TypeHints())


def _describe(pipeline: Any, hints: Any) -> dict[str, Any]:

    bound = pipeline.bound_inputs
    required: list[dict[str, Any]] = []
    optional: list[dict[str, Any]] = []
    for name in pipeline.root_args:
        if name in bound:
            continue
        entry = {"name": name, "type": hints.pipeline_input(pipeline, name)}
        readers = [item for item in pipeline.pgraph.nodes if name in item.inputs]
        if readers and all(name in item.defaults for item in readers):
            entry["default"] = _default_of(readers[0], name)
            optional.append(entry)
        else:
            required.append(entry)
    return {
        "name": pipeline.label,
        "inputs": {
            "required": required,
            "optional": optional,
            "bound": [
                {"name": k, "type": hints.pipeline_input(pipeline, k), "value": v}
                for k, v in bound.items()
            ],
        },
        "outputs": [
            {"name": o, "type": hints.pipeline_output(pipeline, o)} for o in pipeline.output_names
        ],
        "type_check": getattr(pipeline, "type_check", None),
        "nodes": [_describe_item(item, hints) for item in pipeline.pgraph.nodes],
    }


def _default_of(item: Any, name: str) -> Any:
    """The default a node (or, inside, a nested pipeline's first reader) gives input ``name``."""
    if isinstance(item, Node):
        return item.defaults.get(name)
    pipeline = item.pipeline
    inner = next((i for i, o in item.input_to_outer.items() if o == name), name)
    if inner in pipeline.bound_inputs:
        return pipeline.bound_inputs[inner]
    reader = next((r for r in pipeline.pgraph.nodes if inner in r.inputs), None)
    return None if reader is None else _default_of(reader, inner)


_OPTIONS = ("cache", "cache_version", "retries", "retry_on", "timeout", "resources")


def _describe_item(item: Any, hints: Any) -> dict[str, Any]:
    in_types = hints.inputs(item)
    out_types = hints.outputs(item)
    outputs = [{"name": o, "type": out_types.get(o)} for o in item.outputs]
    if isinstance(item, Node):
        inputs = []
        for wire, param in zip(item.inputs, item.parameters):
            entry: dict[str, Any] = {"name": wire, "type": in_types.get(wire)}
            if param != wire:
                entry["parameter"] = param
            if wire in item.defaults:
                entry["default"] = item.defaults[wire]
            inputs.append(entry)
        func = item.__wrapped__
        return {
            "name": item.name,
            "kind": "function",
            "function": f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}",
            "async": item.is_async,
            "inputs": inputs,
            "outputs": outputs,
            "options": _node_options(item),
        }
    inputs = []
    optional = item.defaults
    for name in item.inputs:
        entry = {"name": name, "type": in_types.get(name)}
        if name in optional:
            entry["default"] = _default_of(item, name)
        inputs.append(entry)
    return {
        "name": item.name,
        "kind": "pipeline",
        "inputs": inputs,
        "outputs": outputs,
        "input_mapping": dict(item.input_mapping),
        "output_mapping": dict(item.output_mapping),
        "map_over": list(item.map_over),
        "map_mode": item.map_mode if item.map_over else None,
        "pipeline": _describe(item.pipeline, hints),
    }


def input_hints(pipeline: Any) -> dict[str, Any]:
    """The annotation of each input of ``pipeline`` that its own nodes read (the first node
    that annotates it), by input name."""
    found: dict[str, Any] = {}
    roots = set(pipeline.root_args)
    for item in pipeline.pgraph.nodes:
        if not isinstance(item, Node):
            continue
        hints = node_hints(item)
        for wire, param in zip(item.inputs, item.parameters):
            if wire in roots and wire not in found and param in hints:
                found[wire] = hints[param]
    return found


def _node_options(item: Any) -> dict[str, Any]:
    options = {k: getattr(item, k) for k in _OPTIONS if hasattr(item, k)}
    if "retry_on" in options:  # what is retried, by name; nothing when nothing is
        kinds = options["retry_on"] if options.get("retries") else ()
        options["retry_on"] = [getattr(kind, "__name__", str(kind)) for kind in kinds]
    if getattr(item, "batch_func", None) is not None:  # True: batch-only; "dual": both functions
        options["batch"] = "dual" if item.per_item else True
    return options


_DEFAULT_OPTIONS: dict[str, Any] = {
    "cache": True,
    "cache_version": None,
    "retries": 0,
    "retry_on": [],
    "timeout": None,
}


def describe_text(description: Mapping[str, Any], indent: str = "") -> str:
    """The description from :func:`describe_pipeline` as readable text."""
    d = description
    nodes = d["nodes"]
    lines = [f"{indent}pipeline {d['name']!r}: {len(nodes)} node{'s' * (len(nodes) != 1)}"]
    lines.extend(_input_lines(d["inputs"], indent))
    lines.append(f"{indent}outputs: {_names(d['outputs']) or '-'}")
    lines.append(f"{indent}nodes:")
    for item in nodes:
        if item["kind"] == "function":
            lines.append(_function_line(item, indent))
        else:
            lines.extend(_nested_lines(item, indent))
    return "\n".join(lines)


def _input_lines(ins: Mapping[str, Any], indent: str) -> list[str]:
    """The ``inputs:`` section of :func:`describe_text`: required, optional and bound."""
    optional = ", ".join(f"{_typed(e)} = {_short(e['default'])}" for e in ins["optional"])
    bound = ", ".join(f"{_typed(e)} = {_short(e['value'])}" for e in ins["bound"])
    return [
        f"{indent}inputs:",
        f"{indent}  required: {_names(ins['required']) or '-'}",
        f"{indent}  optional: {optional or '-'}",
        f"{indent}  bound:    {bound or '-'}",
    ]


def _function_line(item: Mapping[str, Any], indent: str) -> str:
    """The line of :func:`describe_text` for a function node, with its non-default options."""
    params = ", ".join(_param(e) for e in item["inputs"])
    outs = _names(item["outputs"])
    options = [f"{k}={v!r}" for k, v in item["options"].items() if _shown_option(k, v)]
    extra = f"  [{', '.join(options)}]" if options else ""
    kind = "async " if item["async"] else ""
    return f"{indent}  {kind}{item['name']}({params}) -> {outs}{extra}"


def _shown_option(key: str, value: Any) -> bool:
    """Whether a node option is worth showing: not its default (or, without one, set)."""
    if key in _DEFAULT_OPTIONS:
        return value != _DEFAULT_OPTIONS[key]
    return bool(value)


def _nested_lines(item: Mapping[str, Any], indent: str) -> list[str]:
    """The lines of :func:`describe_text` for a nested pipeline: its mapping, then its own text."""
    params = ", ".join(_param(e) for e in item["inputs"])
    outs = _names(item["outputs"])
    notes = []
    if item["map_over"]:
        notes.append(f"maps over {', '.join(item['map_over'])} ({item['map_mode']})")
    for outer, inner in item["input_mapping"].items():
        notes.append(f"input {outer} -> {inner}")
    for inner, outer in item["output_mapping"].items():
        notes.append(f"output {inner} -> {outer}")
    lines = [f"{indent}  {item['name']}({params}) -> {outs}"]
    if notes:
        lines.append(f"{indent}      {'; '.join(notes)}")
    lines.append(describe_text(item["pipeline"], indent + "      "))
    return lines


def _typed(entry: Mapping[str, Any]) -> str:
    return f"{entry['name']}: {entry['type']}" if entry.get("type") else entry["name"]


def _names(entries: list[Mapping[str, Any]]) -> str:
    return ", ".join(_typed(e) for e in entries)


def _param(entry: Mapping[str, Any]) -> str:
    text = entry["name"]
    if "parameter" in entry:
        text += f" as {entry['parameter']}"
    if entry.get("type"):
        text += f": {entry['type']}"
    if "default" in entry:
        text += f" = {_short(entry['default'])}"
    return text


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Caches


def cache_summary(store: Any, directory: Path) -> dict[str, Any]:
    """Entries, bytes on disk, and oldest/newest store times of a ``DiskCache``.

    The times come from diskcache's own record of when each entry was stored, read-only; where
    that cannot be read, from the modification times of the files in the directory.
    """
    oldest, newest = _store_times(directory)
    if oldest is None:
        oldest, newest = _file_times(directory)
    return {
        "directory": str(directory),
        "entries": len(store),
        "size_bytes": int(store.volume()),
        "oldest": _iso(oldest),
        "newest": _iso(newest),
    }


def _store_times(directory: Path) -> tuple[float | None, float | None]:
    """Oldest and newest ``store_time`` in diskcache's index, opened read-only."""
    uri = (directory / "cache.db").resolve().as_uri() + "?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=5)
    except sqlite3.Error:
        return None, None
    try:
        row = connection.execute("SELECT MIN(store_time), MAX(store_time) FROM Cache").fetchone()
    except sqlite3.Error:
        return None, None
    finally:
        connection.close()
    return (row[0], row[1]) if row else (None, None)


def _file_times(directory: Path) -> tuple[float | None, float | None]:
    times = [
        entry.stat().st_mtime
        for entry in directory.rglob("*")
        if entry.is_file() and not entry.name.startswith("cache.db")
    ]
    return (min(times), max(times)) if times else (None, None)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def format_bytes(size: int) -> str:
    """``1.2 MiB``-style size."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


__all__ = [
    "CommandFailure",
    "JsonEncoder",
    "UsageProblem",
    "cache_summary",
    "describe_pipeline",
    "describe_text",
    "format_bytes",
    "parse_assignment",
    "read_inputs_file",
]
