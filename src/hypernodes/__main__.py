"""``python -m hypernodes``: the ``hypernodes`` command."""

from .cli.command import main

raise SystemExit(main())
