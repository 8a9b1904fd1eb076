"""``python -m hypernodes``: the ``hypernodes`` command."""

from .cli import main

raise SystemExit(main())
