"""Shipping the user's own modules by value to worker processes that cannot import them.

cloudpickle pickles a function or class by reference (``module.name``) when its module can be
imported, and a worker then imports that module.  A Dask or Ray worker on another machine, or
started in another directory, has the installed packages but not the user's own modules (a
``pipeline.py`` beside a script or notebook, the project's tests) and fails with a bare
``ModuleNotFoundError``.  :func:`dumps` pickles with every loaded module that is not installed
(whose file lies outside the interpreter's library directories) registered by value for the
duration of the call, so the code travels with the plan; what cannot be pickled that way
(an object whose class refuses it) is pickled by reference as before.  On the worker side,
:func:`loads` turns an import that still fails into a
:class:`~hypernodes.exceptions.WorkerImportError` naming the module and what to do.
"""

from __future__ import annotations

import os
import pickle
import site
import sys
import sysconfig
import threading
from contextlib import contextmanager
from typing import Any

from ..exceptions import WorkerImportError

#: modules of the library itself: importable wherever it runs
_OWN = __name__.split(".")[0]

_LOCK = threading.RLock()
#: per kind of worker (local or not): (number of loaded modules, the user's module names among
#: them), recomputed when the number changes
_FOUND: dict[bool, tuple[int, tuple[str, ...]]] = {}


def library_dirs() -> tuple[str, ...]:
    """The directories whose modules are installed (the standard library, site-packages):
    modules there are pickled by reference, every other loaded module by value."""
    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    dirs.update(site.getsitepackages() if hasattr(site, "getsitepackages") else ())
    dirs.add(site.getusersitepackages())
    return tuple(sorted(os.path.realpath(path) + os.sep for path in dirs if path))


#: see :func:`library_dirs`; a test may add a directory to stand for an installed package
LIBRARY_DIRS = library_dirs()


def user_modules(local: bool = False) -> tuple[str, ...]:
    """The names of the loaded modules that are the user's own (not installed, not ours).

    ``local``: the workers run on this machine with this ``sys.path`` and working directory
    (``"parallel"``), so they import by name every module this process can find by name; only
    the others (a module loaded from a file outside ``sys.path``) are the ones to send."""
    modules = sys.modules
    known = _FOUND.get(local)
    if known is not None and known[0] == len(modules):
        return known[1]
    found = []
    for name, module in list(modules.items()):
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py") or name in ("__main__", "__mp_main__"):
            continue
        if name.split(".")[0] == _OWN or os.path.realpath(file).startswith(LIBRARY_DIRS):
            continue
        if not (local and _found_by_name(name, file)):
            found.append(name)
    _FOUND[local] = (len(modules), tuple(found))
    return _FOUND[local][1]


def _found_by_name(name: str, file: str) -> bool:
    """Whether a fresh process importing ``name`` from ``sys.path`` gets the module loaded
    from ``file`` (not asked of ``sys.modules``: a module loaded from a file outside
    ``sys.path`` is there too)."""
    from importlib.machinery import PathFinder

    top = name.partition(".")[0]
    try:
        spec = PathFinder.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin:
        return False
    real = os.path.realpath(file)
    if top == name:
        return os.path.realpath(spec.origin) == real
    places = spec.submodule_search_locations or []
    return any(real.startswith(os.path.realpath(place) + os.sep) for place in places)


@contextmanager
def shipped_by_value(local: bool = False) -> Any:
    """While in the block, cloudpickle pickles the user's modules (:func:`user_modules`) by
    value; the registrations are undone after it (other pickling in this process is
    unaffected once it ends)."""
    import cloudpickle

    with _LOCK:
        added = []
        for name in user_modules(local):
            module = sys.modules.get(name)
            if module is None or _registered(cloudpickle, name):
                continue
            cloudpickle.register_pickle_by_value(module)
            added.append(name)
        try:
            yield
        finally:
            for name in added:
                cloudpickle.unregister_pickle_by_value(sys.modules.get(name) or _Named(name))


class _Named:
    """Stands for a module that was unloaded meanwhile (only its name is needed)."""

    def __init__(self, name: str) -> None:
        self.__name__ = name


def _registered(cloudpickle: Any, name: str) -> bool:
    registered: set[str] = getattr(cloudpickle.cloudpickle, "_PICKLE_BY_VALUE_MODULES", set())
    return name in registered


def shipped(module: str | None) -> bool:
    """Whether objects of ``module`` are being pickled by value right now (in a
    :func:`shipped_by_value` block, or registered by the user with cloudpickle): a node or
    resource factory defined there must then travel by value too, not as a reference."""
    if not module or "cloudpickle" not in sys.modules:
        return False
    registered = getattr(sys.modules["cloudpickle"].cloudpickle, "_PICKLE_BY_VALUE_MODULES", ())
    return any(module == name or module.startswith(name + ".") for name in registered)


def dumps(obj: Any, local: bool = False) -> bytes:
    """cloudpickle ``obj`` with the user's modules by value (see the module; ``local``: for
    workers on this machine, see :func:`user_modules`), or by reference when something in it
    cannot be pickled by value."""
    import cloudpickle

    try:
        with shipped_by_value(local):
            return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes, what: str) -> Any:
    """Unpickle ``data`` in a worker; a module it cannot import is a WorkerImportError."""
    try:
        return pickle.loads(data)
    except ImportError as exc:
        module = exc.name or "?"
        raise WorkerImportError(
            f"a worker process cannot import the module {module!r} that {what} needs "
            f"({type(exc).__name__}: {exc}). Install it where the workers run (pip install it "
            "into their environment), or make it importable there (on Dask: "
            f"client.upload_file('{module.replace('.', '/')}.py')). Modules outside the "
            "interpreter's library directories are sent by value; this one was pickled by "
            "reference because it is installed here",
            module,
        ) from exc
