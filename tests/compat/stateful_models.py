"""A ``@stateful`` class at module level, so worker processes import it by reference."""

from __future__ import annotations

import os

from hypernodes import stateful

#: pids of the processes where a Scaler was built (each process has its own list)
BUILT: list[int] = []


@stateful
class Scaler:
    def __init__(self, factor: int) -> None:
        BUILT.append(os.getpid())
        self.factor = factor

    def scale(self, x: int) -> int:
        return x * self.factor

    def built_in(self) -> list[int]:
        return list(BUILT)


@stateful
class Client:
    """Keyed by its url only: the token is left out of cache keys (0.4's ``__cache_key__``)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token

    def __cache_key__(self) -> str:
        return self.url
