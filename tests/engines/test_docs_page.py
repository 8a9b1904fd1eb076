"""docs/execution-engines.md matches the code (tests/test_docs.py runs its examples)."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "execution-engines.md"


def test_the_page_documents_every_executor_class():
    from hypernodes import engines

    text = DOC.read_text()
    for name in ("SequentialExecutor", "ThreadedExecutor", "AsyncExecutor", "ParallelExecutor"):
        assert f"{name}(" in text and hasattr(engines, name)
    for executor in ("sequential", "threaded", "async", "parallel"):
        assert f'`"{executor}"`' in text
