"""``read_signature`` reads a plain function's parameters from its code object, as
``inspect.signature`` would, and defers to ``inspect.signature`` for anything else."""

from __future__ import annotations

import functools
import inspect

import pytest

from hypernodes.model.signature import plain_function, read_signature


def positional_only(a, b=2, /, c=3, *args, d, e=5, **kw):
    return a


def keyword_only(x, *, y=1, z):
    return x


async def coroutine(x, y=None):
    return x


def generator(x):
    yield x


@functools.wraps(positional_only)
def wrapped(*args, **kwargs):
    return positional_only(*args, **kwargs)


class Callable:
    def __call__(self, p, q=4):
        return p


@pytest.mark.parametrize(
    "func",
    [
        positional_only,
        keyword_only,
        coroutine,
        generator,
        lambda: 0,
        lambda v, w=[1]: v,
        wrapped,
        Callable(),
        functools.partial(keyword_only, 1),
        len,
    ],
    ids=lambda f: getattr(f, "__name__", type(f).__name__),
)
def test_parameters_match_inspect(func):
    mine = [(p.name, p.kind, p.default) for p in read_signature(func).parameters.values()]
    theirs = [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]
    assert mine == theirs


def test_only_plain_functions_take_the_fast_path():
    assert plain_function(positional_only) and plain_function(coroutine)
    assert not plain_function(wrapped)  # has __wrapped__: inspect follows it
    assert not plain_function(Callable()) and not plain_function(len)
