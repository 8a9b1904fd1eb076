"""The original HyperNodes' import paths, in one place.

Code written for the original library imports ``hypernodes.engine``, ``hypernodes.executors`` and
``hypernodes.callbacks``.  Each is an alias of the module that holds those names here, registered
in :data:`sys.modules` when :mod:`hypernodes` is imported, so both spellings give the very same
objects.  New code should import from ``hypernodes``, ``hypernodes.engines`` and
``hypernodes.observe.callbacks``.
"""

from __future__ import annotations

import importlib
import sys

#: old module path -> the module that holds its names now
ALIASES = {
    "hypernodes.engine": "hypernodes.engines",
    "hypernodes.executors": "hypernodes.engines",
    "hypernodes.callbacks": "hypernodes.observe.callbacks",
}


def install() -> None:
    """Make every old path importable (``import hypernodes.engine`` and ``from ... import``)."""
    for old, new in ALIASES.items():
        sys.modules.setdefault(old, importlib.import_module(new))
