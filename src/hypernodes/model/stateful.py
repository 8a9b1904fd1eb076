"""0.4's ``@stateful`` classes, as our :class:`~hypernodes.Resource` recipes.

``@stateful class Model: ...`` makes ``Model(path)`` a recipe (a :class:`StatefulHandle`, which is
a ``Resource``): ``__init__`` is not run then.  Like every resource it travels to workers as its
class and arguments, is keyed in the cache by them, and is built once per process when a node
first reads it; nodes receive the built ``Model``.  Using the handle outside a node (``handle.
predict(...)``) builds it in this process and forwards the attribute, as 0.4's lazy proxy did.

A class that defines ``__cache_key__`` is keyed by what the built object's ``__cache_key__()``
returns (0.4's way to leave a secret out of keys); an instance is built in this process to ask
it, once per recipe.
"""

from __future__ import annotations

from typing import Any

from .resources import Resource, ResourceFactory

__all__ = ["StatefulHandle", "stateful"]


class StatefulHandle(Resource):
    """The recipe of a ``@stateful`` class's instance; attribute access reaches the object."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in Resource.__slots__:
            raise AttributeError(name)
        return getattr(self.get(), name)

    def __cache_key__(self) -> Any:
        cls = self.factory.func  # type: ignore[attr-defined]
        if "__cache_key__" in vars(cls):
            # the key decides which built object is shared, so it is read off an instance of
            # its own (asked once per recipe: Resource.key keeps the token)
            return ("hypernodes.stateful", cls, cls(*self.args, **self.kwargs).__cache_key__())
        return super().__cache_key__()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_handle, (self.factory, self.args, self.kwargs, self.key))

    def __repr__(self) -> str:
        return "stateful " + super().__repr__()


def _restore_handle(
    factory: Any, args: tuple[Any, ...], kwargs: dict[str, Any], key: Any
) -> StatefulHandle:
    made = StatefulHandle(factory, *args, **kwargs)
    made._key = key
    return made


class StatefulClass(ResourceFactory):
    """A ``@stateful`` class: calling it gives a :class:`StatefulHandle` (nothing is built)."""

    def __call__(self, *args: Any, **kwargs: Any) -> StatefulHandle:
        return StatefulHandle(self, *args, **kwargs)

    def __instancecheck__(self, instance: Any) -> bool:  # isinstance(obj, Model) on built objects
        return isinstance(instance, self.func)

    def __repr__(self) -> str:
        return f"<stateful {self.func.__qualname__!r}>"


def stateful(cls: type) -> StatefulClass:
    """0.4's ``@stateful``: instances are lazy recipes built once per process (see the module
    docstring).  New code writes ``Resource(Model, path)`` or ``@resource`` instead."""
    if not isinstance(cls, type):
        raise TypeError(f"@stateful decorates a class, got {cls!r}")
    return StatefulClass(cls)
