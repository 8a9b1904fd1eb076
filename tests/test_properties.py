"""Property test: random DAGs give the same result as a straightforward reference evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernodes import Node, Pipeline
from hypernodes.exceptions import MapError, UnknownInputError

ROOTS = ("r0", "r1", "r2")


def combine(index: int, args: tuple[int, ...]) -> int:
    total = index * 7919
    for position, value in enumerate(args):
        total = (total * 31 + (position + 1) * value) % 1_000_003
    return total


def make_function(index: int, params: list[str], defaults: dict[str, int], pair: bool):
    signature = ", ".join(f"{p}={defaults[p]}" if p in defaults else p for p in params)
    body = f"combine({index}, ({''.join(p + ', ' for p in params)}))"
    if pair:
        body = f"({body}, -{body})"
    namespace = {"combine": combine}
    exec(f"def node_{index}({signature}):\n    return {body}\n", namespace)
    return namespace[f"node_{index}"]


@st.composite
def dags(draw):
    count = draw(st.integers(min_value=1, max_value=40))
    specs = []
    available = list(ROOTS)
    for index in range(count):
        params = draw(st.lists(st.sampled_from(available), max_size=4, unique=True))
        # an optional parameter nobody produces: its default is used
        defaults = {}
        if draw(st.booleans()):
            extra = f"opt{index}"
            params.append(extra)
            defaults[extra] = draw(st.integers(0, 9))
        pair = draw(st.integers(0, 4)) == 0
        outputs = (f"o{index}a", f"o{index}b") if pair else (f"o{index}",)
        specs.append((index, params, defaults, pair, outputs))
        available.extend(outputs)
    order = draw(st.permutations(range(count)))  # nodes may be listed in any order
    return specs, list(order)


def reference(specs, inputs: dict[str, int]) -> dict[str, int]:
    values = dict(inputs)
    for index, params, defaults, pair, outputs in specs:
        args = tuple(values.get(p, defaults.get(p)) for p in params)
        result = combine(index, args)
        if pair:
            values[outputs[0]], values[outputs[1]] = result, -result
        else:
            values[outputs[0]] = result
    return values


@settings(max_examples=60, deadline=None)
@given(dags(), st.data())
def test_random_dags_match_reference(dag, data):
    specs, order = dag
    nodes = [
        Node(make_function(i, params, defaults, pair), outputs if pair else outputs[0])
        for i, params, defaults, pair, outputs in specs
    ]
    pipeline = Pipeline([nodes[i] for i in order], name="random")
    drawn = {r: data.draw(st.integers(-50, 50), label=r) for r in ROOTS}
    expected = reference(specs, drawn)
    all_outputs = [o for spec in specs for o in spec[4]]
    # Only the roots some node reads: a name the pipeline does not take is an UnknownInputError.
    inputs = {r: v for r, v in drawn.items() if r in pipeline.root_args}
    if len(inputs) < len(drawn):
        with pytest.raises(UnknownInputError):
            pipeline.run(drawn)

    assert pipeline.run(inputs) == {o: expected[o] for o in all_outputs}

    wanted = data.draw(st.lists(st.sampled_from(all_outputs), min_size=1, max_size=5, unique=True))
    assert pipeline.run(inputs, output_name=wanted) == {o: expected[o] for o in wanted}

    xs = data.draw(st.lists(st.integers(-50, 50), max_size=4), label="mapped values")
    mappable = [r for r in ROOTS if r in pipeline.root_args]
    if not mappable:  # no node reads a root input: mapping over one is refused
        with pytest.raises(MapError, match="takes no input"):
            pipeline.map({**inputs, "r0": xs}, map_over="r0")
        return
    over = mappable[0]
    mapped = pipeline.map({**inputs, over: xs}, map_over=over, output_name=wanted)
    assert mapped == [{o: reference(specs, {**drawn, over: x})[o] for o in wanted} for x in xs]
