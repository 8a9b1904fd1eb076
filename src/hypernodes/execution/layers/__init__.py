"""Step layers: what wraps one step - a concurrency limit, a timeout, retries, the cache and
callback events, output checks - registered once, here, in the order they wrap.

A step's runner is built from its layers so that a run without options, cache or callbacks pays
for nothing, and the sync and async paths share each layer:

- ``call`` layers (output checks, concurrency, rate limit, timeout) wrap the node's function, ``runner`` layers (retry)
  wrap the step's runner; both are built into the step when the plan is compiled, since they
  depend only on the node's options;
- ``around`` layers (cache, events) have ``before``/``after``/``error`` parts called around the
  step (:class:`~hypernodes.execution.layers.base.Layer`); they are composed once per plan and
  kind of context.  ``before`` may return :data:`SKIP` (a cache hit found once the step's inputs
  existed), and the layers after it are told with ``skipped``.

A new layer is one module that defines its :class:`Entry` as ``LAYER``, plus its place in
:data:`REGISTRY` below.
"""

from __future__ import annotations

from typing import Any

from . import cache, check, concurrency, events, rate, retry, timeout
from .base import SKIP, Entry, Layer, acompose, compose, run_after, run_before, run_error

#: every layer, innermost first within its kind
REGISTRY: tuple[Entry, ...] = (
    check.LAYER,
    concurrency.LAYER,
    rate.LAYER,
    timeout.LAYER,
    retry.LAYER,
    cache.LAYER,
    events.LAYER,
)

CALL = tuple(entry for entry in REGISTRY if entry.kind == "call")
RUNNER = tuple(entry for entry in REGISTRY if entry.kind == "runner")
#: around layers, outermost first (the order ``compose`` takes them)
AROUND = tuple(entry for entry in REGISTRY if entry.kind == "around")
#: the context attributes that turn the around layers on
AROUND_FIELDS = tuple(entry.field for entry in AROUND)


def call_layers(node: Any) -> tuple[Entry, ...]:
    """The call layers ``node`` needs, innermost first."""
    return tuple(entry for entry in CALL if entry.wanted(node))  # type: ignore[misc]


def runner_layers(node: Any) -> tuple[Entry, ...]:
    """The runner layers ``node`` needs, innermost first."""
    return tuple(entry for entry in RUNNER if entry.wanted(node))  # type: ignore[misc]


def around_key(ctx: Any) -> tuple[bool, ...]:
    """Which around layers ``ctx`` turns on (the key of a plan's composed runners)."""
    return tuple([getattr(ctx, name) is not None for name in AROUND_FIELDS])


def around_layers(plan: Any, key: tuple[bool, ...]) -> list[Layer]:
    """The around layers for ``plan`` in a context whose :func:`around_key` is ``key``."""
    return [entry.make(plan) for entry, on in zip(AROUND, key) if on]  # type: ignore[misc]


__all__ = [
    "AROUND",
    "REGISTRY",
    "SKIP",
    "Entry",
    "Layer",
    "acompose",
    "around_key",
    "around_layers",
    "call_layers",
    "compose",
    "run_after",
    "run_before",
    "run_error",
    "runner_layers",
]
