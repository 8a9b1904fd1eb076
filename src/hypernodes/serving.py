"""Serving a pipeline over HTTP: ``POST /run`` and ``POST /map`` with JSON bodies.

:func:`make_app` builds a FastAPI application (its request and response schemas come from the
pipeline's annotations, so ``/openapi.json`` and ``/docs`` describe them); :func:`serve` runs it
with uvicorn, on 127.0.0.1 unless told otherwise.  Both need ``pip install "hypernodes[serve]"``.
Handlers await :meth:`Pipeline.arun` and :meth:`Pipeline.amap`, so a request never blocks the
server's event loop.
"""

import socket
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .exceptions import HyperNodesError
from .execution.item_error import ItemError
from .model.node import Node
from .model.pipeline import Pipeline
from .model.typecheck import function_hints

__all__ = ["make_app", "serve"]


def _require() -> tuple[Any, Any]:
    try:
        import fastapi
        import pydantic
    except ImportError as exc:
        raise HyperNodesError(
            'serving a pipeline needs FastAPI and uvicorn: pip install "hypernodes[serve]"'
        ) from exc
    return fastapi, pydantic


# ---------------------------------------------------------------------------------------------
# schemas from annotations


def _schema_type(hint: Any, pydantic: Any) -> Any:
    """``hint`` when pydantic can describe it in JSON schema, else ``Any``."""
    if hint is None:
        return Any
    try:
        pydantic.TypeAdapter(hint).json_schema()
    except Exception:  # a class pydantic cannot describe: accept any JSON value
        return Any
    return hint


def _input_hints(pipeline: Pipeline) -> dict[str, tuple[Any, bool]]:
    """Root input name -> (annotation or None, whether it is optional)."""
    found: dict[str, tuple[Any, bool]] = {}
    bound = pipeline.bound_inputs
    for name in pipeline.root_args:
        readers = [item for item in pipeline.nodes if name in item.inputs]
        hint = None
        for item in readers:
            if isinstance(item, Node):
                parameter = dict(zip(item.inputs, item.parameters))[name]
                hint = function_hints(item.func).get(parameter)
                if hint is not None:
                    break
        optional = name in bound or all(name in item.defaults for item in readers)
        found[name] = (hint, optional)
    return found


def _output_hints(pipeline: Pipeline) -> dict[str, Any]:
    """Output name -> its producer's return annotation (an element for several outputs)."""
    found: dict[str, Any] = {}
    for item in pipeline.nodes:
        ret = function_hints(item.func).get("return") if isinstance(item, Node) else None
        args = getattr(ret, "__args__", None)
        for index, name in enumerate(item.outputs):
            if len(item.outputs) == 1:
                found[name] = ret
            elif args and len(args) == len(item.outputs):
                found[name] = args[index]
            else:
                found[name] = None
    return found


def _models(pipeline: Pipeline, pydantic: Any) -> dict[str, Any]:
    """The request and response models of ``/run`` and ``/map``."""
    create = pydantic.create_model
    label = "".join(part.title() for part in pipeline.label.replace("-", "_").split("_"))
    inputs: dict[str, Any] = {}
    mapped: dict[str, Any] = {}
    for name, (hint, optional) in _input_hints(pipeline).items():
        kind = _schema_type(hint, pydantic)
        default = None if optional else ...
        inputs[name] = (kind | None if optional else kind, default)
        mapped[name] = (list[kind] | kind | None if optional else list[kind] | kind, default)  # type: ignore[valid-type]
    outputs = {
        n: (_schema_type(h, pydantic) | None, None) for n, h in _output_hints(pipeline).items()
    }
    error = create(
        "ItemErrorBody", error=(str, ...), message=(str, ...), node=(str | None, None),
        item=(int | None, None),
    )  # fmt: skip
    row = {n: (kind | error | None, None) for n, (kind, _) in outputs.items()}
    names = list[str] | str | None
    strict = pydantic.ConfigDict(extra="forbid")  # an unknown input is refused, not ignored
    return {
        "run_in": create(f"{label}RunRequest", inputs=(create(f"{label}Inputs", __config__=strict, **inputs), ...),
                         output_name=(names, None)),
        "run_out": create(f"{label}RunResponse", outputs=(create(f"{label}Outputs", **outputs), ...)),
        "map_in": create(
            f"{label}MapRequest", inputs=(create(f"{label}MapInputs", __config__=strict, **mapped), ...),
            map_over=(list[str] | str, ...), map_mode=(Literal["zip", "product"], "zip"),
            output_name=(names, None), on_error=(Literal["raise", "continue"], "raise"),
        ),
        "map_out": create(f"{label}MapResponse", rows=(list[create(f"{label}Row", **row)], ...)),  # type: ignore[misc]
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# the application


def error_body(exc: BaseException) -> dict[str, Any]:
    """What a failed request answers: the error's type and message, and for a node's error the
    node, pipeline path, item and notes."""
    snapshot = getattr(exc, "hypernodes_snapshot", None)
    body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if snapshot is not None:
        body.update(node=snapshot.node, path=list(snapshot.path), item=snapshot.item)
    notes = getattr(exc, "__notes__", None)
    if notes:
        body["notes"] = list(notes)
    return body


def _row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: {**error_body(value.exception), "node": value.node, "item": value.index}
        if isinstance(value, ItemError)
        else value
        for name, value in row.items()
    }


def _given(inputs: Any) -> dict[str, Any]:
    return {k: v for k, v in inputs.model_dump().items() if k in inputs.model_fields_set}


def make_app(pipeline: Pipeline, *, title: str | None = None) -> Any:
    """A FastAPI application serving ``pipeline``: ``POST /run``, ``POST /map``, and
    ``GET /health``; errors answer JSON with the node and item (``400`` for what the request
    got wrong, ``500`` for a node that raised)."""
    fastapi, pydantic = _require()
    from fastapi.responses import JSONResponse

    models = _models(pipeline, pydantic)
    app = fastapi.FastAPI(title=title or f"HyperNodes pipeline {pipeline.label!r}")

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    async def on_error(request: Any, exc: Exception) -> Any:
        status = 400 if isinstance(exc, HyperNodesError) and not _from_node(exc) else 500
        return JSONResponse(fastapi.encoders.jsonable_encoder(error_body(exc)), status_code=status)

    run_in, map_in = models["run_in"], models["map_in"]

    async def run(body: run_in) -> Any:  # type: ignore[valid-type]
        asked: Any = body  # a pydantic model made from the pipeline's annotations
        outputs = await pipeline.arun(_given(asked.inputs), output_name=asked.output_name)
        return {"outputs": outputs}

    async def map_(body: map_in) -> Any:  # type: ignore[valid-type]
        asked: Any = body
        rows = await pipeline.amap(
            _given(asked.inputs),
            map_over=asked.map_over,
            map_mode=asked.map_mode,
            output_name=asked.output_name,
            on_error=asked.on_error,
        )
        return {"rows": [_row(row) for row in rows]}

    shown = {"response_model_exclude_unset": True}
    app.post("/run", response_model=models["run_out"], summary="Run once", **shown)(run)
    app.post("/map", response_model=models["map_out"], summary="Map over lists", **shown)(map_)
    app.get("/health")(_health)
    return app


async def _health() -> dict[str, str]:
    return {"status": "ok"}


def _from_node(exc: BaseException) -> bool:
    """Whether ``exc`` was raised by a node (an output check, a timeout) rather than refused."""
    return getattr(exc, "hypernodes_snapshot", None) is not None


def serve(
    pipeline: Pipeline,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    ready: Callable[[str], Any] | None = None,
) -> None:
    """Serve ``pipeline`` with uvicorn until interrupted (Ctrl-C, SIGTERM).

    Binds ``host`` (127.0.0.1: this machine only; ``"0.0.0.0"`` to listen on every interface)
    and ``port`` (0: a free one); ``ready`` is called with the address, ``http://host:port``,
    once the socket is bound.
    """
    _require()
    import uvicorn

    app = make_app(pipeline)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    bound = sock.getsockname()[1]
    if ready is not None:
        ready(f"http://{host}:{bound}")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
