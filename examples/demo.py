"""HyperNodes demo: text statistics over a bundled file of 300 support tickets.

One small pipeline analyses one ticket; a second pipeline nests it, maps it over every line of the
file and summarises the results.  Run it with ``make demo``.
"""

from __future__ import annotations

import pathlib
import re
import time
from collections import Counter

from hypernodes import DiskCache, HypernodesEngine, HyperNodesError, Pipeline, node
from hypernodes.telemetry import ProgressCallback

DATA = pathlib.Path(__file__).parent / "data" / "tickets.txt"
POSITIVE = frozenset(
    {"great", "excellent", "easy", "clear", "thanks", "recommend", "quickly", "fine"}
)
NEGATIVE = frozenset(
    {"stopped", "cannot", "terrible", "slow", "loud", "flickers", "damaged", "drains"}
)
PRODUCTS = frozenset(
    {"router", "laptop", "printer", "phone", "tablet", "camera", "monitor", "keyboard"}
)


# -- one ticket --------------------------------------------------------------------------------


@node(output_name="words")
def tokenize(text: str) -> list[str]:
    """Lower-case words of one ticket."""
    return re.findall(r"[a-z']+", text.lower())


@node(output_name="sentiment")
def score_sentiment(words: list[str]) -> int:
    """Positive minus negative keywords: > 0 is a happy customer."""
    return sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)


@node(output_name="product")
def find_product(words: list[str]) -> str:
    """The first product the ticket mentions."""
    return next((w for w in words if w in PRODUCTS), "unknown")


@node(output_name=("n_words", "n_chars"))
def measure(text: str, words: list[str]) -> tuple[int, int]:
    """Length of the ticket in words and characters (a node with two outputs)."""
    return len(words), len(text)


ticket = Pipeline([tokenize, score_sentiment, find_product, measure], name="ticket")


# -- the whole file ----------------------------------------------------------------------------


@node(output_name="lines")
def load_lines(path: str) -> list[str]:
    """Non-empty lines of the input file."""
    return [line for line in pathlib.Path(path).read_text(encoding="utf-8").splitlines() if line]


@node(output_name="report")
def summarize(sentiments: list[int], products: list[str], word_counts: list[int]) -> dict:
    """Per-product ticket counts and mood, and overall lengths."""
    mood: dict[str, list[int]] = {}
    for product, sentiment in zip(products, sentiments, strict=True):
        mood.setdefault(product, []).append(sentiment)
    return {
        "tickets": len(products),
        "avg_words": sum(word_counts) / max(len(word_counts), 1),
        "by_product": {
            p: {"tickets": len(s), "avg_sentiment": sum(s) / len(s)}
            for p, s in sorted(mood.items(), key=lambda kv: -len(kv[1]))
        },
        "most_mentioned": Counter(products).most_common(1)[0][0] if products else None,
    }


def build_pipeline() -> Pipeline:
    """The corpus pipeline: load lines, analyse each with ``ticket`` (mapped), summarise."""
    per_line = ticket.as_node(
        input_mapping={"lines": "text"},
        output_mapping={"sentiment": "sentiments", "product": "products", "n_words": "word_counts"},
        map_over="lines",
        name="per_ticket",
    )
    return Pipeline([load_lines, per_line, summarize], name="tickets")


@node(output_name="account")
def look_up_account(text: str) -> dict:
    """Stands in for an API call (5 ms of waiting) that finds the customer's account."""
    time.sleep(0.005)
    return {"tier": "gold" if len(text) % 3 == 0 else "standard"}


def scaled_run(lines: list[str]) -> None:
    """The per-ticket pipeline plus a slow lookup, mapped with the async executor, a disk cache
    and a progress bar: the second run is all cache hits."""
    output = pathlib.Path(__file__).parent / "output"
    cache = DiskCache(output / "cache")
    cache.clear()  # start cold, so the demo shows both runs
    engine = HypernodesEngine(map_executor="async")
    enriched = Pipeline(
        [ticket, look_up_account],
        engine=engine,
        cache=cache,
        callbacks=[ProgressCallback()],
        name="enriched",
    )
    for attempt in ("cold", "warm"):
        start = time.perf_counter()
        rows = enriched.map({"text": lines}, map_over="text", output_name=["product", "account"])
        elapsed = time.perf_counter() - start
        gold = sum(row["account"]["tier"] == "gold" for row in rows)
        print(
            f"{attempt} run: {len(rows)} tickets in {elapsed:.2f} s "
            f"({gold} gold accounts; one at a time the lookups alone take "
            f"{0.005 * len(rows):.1f} s)"
        )
    print(f"cache: {len(cache)} entries, {cache.volume() / 1024:.0f} KiB on disk")
    engine.shutdown()


def main() -> None:
    corpus = build_pipeline()
    print(f"pipeline: {corpus}")
    print(f"inputs: {corpus.root_args}   outputs: {corpus.output_names}\n")

    # 1. one ticket, run once
    example = "The new router arrived quickly and works great. Thanks!"
    print("one ticket:", ticket.run(inputs={"text": example}, output_name=["sentiment", "product"]))

    # 2. the whole file: a nested pipeline mapped over 300 lines
    start = time.perf_counter()
    report = corpus.run(inputs={"path": str(DATA)}, output_name="report")["report"]
    elapsed = time.perf_counter() - start
    print(
        f"\n{report['tickets']} tickets in {elapsed * 1e3:.1f} ms, "
        f"{report['avg_words']:.1f} words on average"
    )
    print(f"{'product':<10} {'tickets':>7} {'mood':>6}")
    for product, row in report["by_product"].items():
        print(f"{product:<10} {row['tickets']:>7} {row['avg_sentiment']:>+6.2f}")

    # 3. map directly, in columns, pruned to what we need
    lines = load_lines(str(DATA))[:5]
    columns = ticket.map(
        {"text": lines},
        map_over="text",
        output_name=["product", "sentiment"],
        return_format="columns",
    )
    print("\nfirst five tickets:", list(zip(columns["product"], columns["sentiment"], strict=True)))

    # 4. scale it: concurrent lookups, a disk cache and a progress bar
    print()
    scaled_run(load_lines(str(DATA)))

    # 5. a picture of the pipeline, nested levels opened
    picture = pathlib.Path(__file__).parent / "output" / "tickets_pipeline.png"
    picture.parent.mkdir(exist_ok=True)
    try:
        corpus.visualize(filename=str(picture), depth=None)
        print(f"\npipeline picture: {picture}")
    except HyperNodesError as exc:  # graphviz's `dot` is not installed
        print(f"\nno pipeline picture: {exc}")


if __name__ == "__main__":
    main()
