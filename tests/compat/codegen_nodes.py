"""Nodes at module level, imported by the Daft scripts generate_code writes."""

from __future__ import annotations

import asyncio

from hypernodes import Pipeline, node


@node(output_name="cleaned")
def clean(text: str, suffix: str = "") -> str:
    return text.strip().lower() + suffix


@node(output_name=("length", "first"))
def measure(cleaned: str) -> tuple[int, str]:
    return len(cleaned), cleaned[:1]


@node(output_name="score")
async def score(length: int, weight: float) -> float:
    await asyncio.sleep(0)
    return length * weight


PIPELINE = Pipeline([clean, measure, score], name="texts").bind(weight=0.5)
