"""Variants: several nodes may produce the same outputs when each names its ``variant=``; a
pipeline runs one of them, the default (``variant_default=True``) or the one
:meth:`Pipeline.with_variants` picks.

A pipeline without variant nodes has no :class:`Variants` (None) and pays nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import VariantError, pipeline_phrase


@dataclass(frozen=True)
class Variants:
    """The variant nodes of a pipeline by group, and the variant chosen in each.

    ``items`` are all the pipeline's nodes as given (every variant included); ``groups`` maps
    each group's outputs to ``{variant name: node}``; ``chosen`` maps the same keys to the
    variant that runs (None: undecided, no default).
    """

    items: tuple[Any, ...]
    groups: dict[tuple[str, ...], dict[str, Any]]
    chosen: dict[tuple[str, ...], str | None] = field(default_factory=dict)

    def active(self) -> list[Any]:
        """The nodes the pipeline's graph holds: the chosen variant of each group (the first
        one given while a group is undecided, so the graph can still be checked and drawn)."""
        keep = []
        for item in self.items:
            variant = getattr(item, "variant", None)
            if variant is None:
                keep.append(item)
                continue
            key = _key(item)
            chosen = self.chosen[key]
            if variant == chosen or (chosen is None and next(iter(self.groups[key])) == variant):
                keep.append(item)
        return keep

    def undecided(self) -> list[tuple[str, ...]]:
        return [key for key, chosen in self.chosen.items() if chosen is None]

    def check_decided(self, label: str) -> None:
        """Raise :class:`VariantError` when a group has no chosen variant."""
        open_groups = self.undecided()
        if not open_groups:
            return
        key = open_groups[0]
        choices = list(self.groups[key])
        raise VariantError(
            f"{pipeline_phrase(label)} has {len(choices)} variants of {_shown(key)}: "
            f"{', '.join(repr(c) for c in choices)}, and none is the default; pick one with "
            f"pipeline.with_variants({key[0]}={choices[0]!r}), or mark one "
            "@node(..., variant_default=True)"
        )

    def pick(self, label: str, choices: Mapping[str, str]) -> Variants:
        """A copy with ``choices`` (``{output name: variant}``) chosen."""
        chosen = dict(self.chosen)
        for name, variant in choices.items():
            key = next((k for k in self.groups if name in k), None)
            if key is None:
                raise VariantError(
                    f"{pipeline_phrase(label)} has no variants of {name!r}; outputs with "
                    f"variants: {', '.join(_shown(k) for k in self.groups)}"
                )
            if variant not in self.groups[key]:
                raise VariantError(
                    f"{pipeline_phrase(label)} has no variant {variant!r} of {_shown(key)}; its "
                    f"variants are {', '.join(repr(v) for v in self.groups[key])}"
                )
            chosen[key] = variant
        return Variants(self.items, self.groups, chosen)

    def describe(self) -> dict[str, dict[str, Any]]:
        """``{outputs: {"variants": [...], "chosen": name or None}}`` for descriptions."""
        return {
            ", ".join(key): {"variants": list(group), "chosen": self.chosen[key]}
            for key, group in self.groups.items()
        }


def _key(item: Any) -> tuple[str, ...]:
    return tuple(sorted(item.outputs))


def _shown(key: tuple[str, ...]) -> str:
    return repr(key[0]) if len(key) == 1 else "(" + ", ".join(repr(k) for k in key) + ")"


def read_variants(items: Sequence[Any], label: str) -> Variants | None:
    """The :class:`Variants` of ``items`` (None when no node names a variant); raises
    :class:`VariantError` for two variants of one name, two defaults, or variants of a group
    that produce different outputs."""
    if not any(getattr(item, "variant", None) is not None for item in items):
        return None
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    by_output: dict[str, tuple[str, ...]] = {}
    defaults: dict[tuple[str, ...], str] = {}
    for item in items:
        variant = getattr(item, "variant", None)
        if variant is None:
            continue
        key = _key(item)
        _check_outputs(item, key, by_output, label)
        group = groups.setdefault(key, {})
        if variant in group:
            raise VariantError(
                f"{pipeline_phrase(label)}: nodes {group[variant].name!r} and {item.name!r} are "
                f"both variant {variant!r} of {_shown(key)}; give each variant its own name"
            )
        group[variant] = item
        if item.variant_default:
            if key in defaults:
                raise VariantError(
                    f"{pipeline_phrase(label)}: variants {defaults[key]!r} and {variant!r} of "
                    f"{_shown(key)} are both marked variant_default=True; keep one"
                )
            defaults[key] = variant
    chosen = {
        key: defaults.get(key, next(iter(group)) if len(group) == 1 else None)
        for key, group in groups.items()
    }
    return Variants(tuple(items), groups, chosen)


def _check_outputs(
    item: Any, key: tuple[str, ...], by_output: dict[str, tuple[str, ...]], label: str
) -> None:
    for name in item.outputs:
        other = by_output.setdefault(name, key)
        if other != key:
            raise VariantError(
                f"{pipeline_phrase(label)}: variant {item.variant!r} ({item.name!r}) produces "
                f"{list(key)}, but another variant of {name!r} produces {list(other)}; the "
                "variants of an output must produce the same outputs"
            )
