"""Every node_executor x map_executor pair the callback tests run under."""

from __future__ import annotations

import itertools

NODE = ("sequential", "threaded", "async", "custom")
MAP = ("sequential", "threaded", "async", "parallel", "custom")
PAIRS = list(itertools.product(NODE, MAP))
IDS = ["-".join(p) for p in PAIRS]
