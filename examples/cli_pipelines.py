"""Small pipelines to try the ``hypernodes`` command on (and that its tests run).

hypernodes describe examples/cli_pipelines.py:text
hypernodes run examples/cli_pipelines.py:text -i text="Hello big world"
hypernodes run examples/cli_pipelines.py:text --map-over text -i 'text=["a b", "c"]' --format jsonl
hypernodes run examples/cli_pipelines.py:corpus -i 'texts=["a b", "c"]'
hypernodes viz examples/cli_pipelines.py:corpus -o corpus.svg --depth all
"""

from __future__ import annotations

from fractions import Fraction

from hypernodes import Pipeline, node

# -- text: one string in, a few statistics out (map it over a list of strings with --map-over) --


@node(output_name="cleaned")
def clean(text: str, lowercase: bool = True) -> str:
    """Trim the text and, by default, lower-case it."""
    text = text.strip()
    return text.lower() if lowercase else text


@node(output_name="words")
def split(cleaned: str) -> list[str]:
    """The words of the text."""
    return cleaned.split()


@node(output_name=("n_words", "longest"))
def measure(words: list[str]) -> tuple[int, str]:
    """How many words, and the longest one."""
    return len(words), max(words, key=len, default="")


text = Pipeline([clean, split, measure], name="text")


# -- corpus: the text pipeline nested and mapped over a list, then summed -----------------------


@node(output_name="total_words")
def total(counts: list[int]) -> int:
    """All words of all texts."""
    return sum(counts)


def make_corpus() -> Pipeline:
    """A function returning a pipeline is a target too: ``cli_pipelines.py:make_corpus``."""
    per_text = text.as_node(
        input_mapping={"texts": "text"},
        output_mapping={"n_words": "counts"},
        map_over="texts",
        name="per_text",
    )
    return Pipeline([per_text, total], name="corpus")


corpus = make_corpus()


# -- checked: a node that raises for some inputs ------------------------------------------------


@node(output_name="root")
def square_root(x: float) -> float:
    """The square root of ``x``; raises ValueError for a negative ``x``."""
    if x < 0:
        raise ValueError(f"cannot take the square root of {x}")
    return x**0.5


checked = Pipeline([square_root], name="checked")


# -- ratio: an output JSON cannot hold (shown by its repr) ---------------------------------------


@node(output_name="ratio")
def as_fraction(numerator: int, denominator: int = 1) -> Fraction:
    """``numerator / denominator`` as an exact fraction."""
    return Fraction(numerator, denominator)


ratio = Pipeline([as_fraction], name="ratio").bind(denominator=3)
