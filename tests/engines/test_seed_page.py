"""Every code block of the user-facing page shared/seed/execution-engines.md runs as written.

Blocks run in page order, each in a fresh namespace called ``__main__`` (like a script or a
notebook, so functions defined there travel to worker processes by value) that already holds
what the page imported at its top.  Placeholders are replaced, and only these: ``nodes=[...]``
by a small node, ``items = [...]`` by data, the example API host by a local HTTP server, and the
Fibonacci inputs by smaller numbers (the page's take ~25 s on two cores).  Each replacement must
find its text, so a change to the page fails here instead of being skipped.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hypernodes import HypernodesEngine, Pipeline

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed" / "execution-engines.md"
if not SEED.is_file():
    # A plain clone has no shared/ beside it: these tests are reported as skipped, and .ci/run
    # (where shared/ is always beside the checkout) fails before the tests if the page is missing.
    pytest.skip(
        f"the seed page {SEED} is not beside this checkout (shared/ sits beside it on the "
        "project's machines and in CI, which checks for it)",
        allow_module_level=True,
    )
BLOCKS = re.findall(r"```python\n(.*?)```", SEED.read_text(), re.S)

PRELUDE = """
from hypernodes import Pipeline, HypernodesEngine, node

@node(output_name="processed")
def process_item(data: int) -> int:
    return data * 2
"""

FIB_SEED = '"n": [35, 36, 37, 38, 35, 36, 37, 38]'
FIB_SMALL = [20, 21, 22, 23, 20, 21, 22, 23]


def fib(x: int) -> int:
    a, b = 0, 1
    for _ in range(x):
        a, b = b, a + b
    return a


def replace(code: str, old: str, new: str) -> str:
    assert old in code, f"the seed block no longer contains {old!r}:\n{code}"
    return code.replace(old, new)


def run_block(code: str) -> tuple[dict, str]:
    """Execute ``code`` as a script would; return its namespace and what it printed."""
    namespace: dict = {"__name__": "__main__"}
    exec(PRELUDE, namespace)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(SEED), "exec"), namespace)
    finally:
        for value in list(namespace.values()):
            if isinstance(value, HypernodesEngine):
                value.shutdown()
            elif isinstance(value, Pipeline) and isinstance(value.engine, HypernodesEngine):
                value.engine.shutdown()
    return namespace, out.getvalue()


def config(engine: HypernodesEngine) -> tuple[str, str]:
    return engine.node_executor, engine.map_executor


def test_the_page_has_the_blocks_this_test_knows():
    assert len(BLOCKS) == 14
    assert "fetch_api" in BLOCKS[3] and "np.random.rand" in BLOCKS[5]
    assert "cpu_intensive" in BLOCKS[7] and "load_data" in BLOCKS[8]
    assert "executors = [" in BLOCKS[12] and "DaftEngine" in BLOCKS[13]


def test_quick_start():
    code = replace(BLOCKS[0], "nodes=[...]", "nodes=[process_item]")
    namespace, _ = run_block(code)
    assert config(namespace["pipeline"].engine) == ("threaded", "parallel")


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (1, ("sequential", "sequential")),
        (2, ("async", "async")),
        (4, ("threaded", "threaded")),
        (6, ("sequential", "parallel")),
        (9, ("async", "sequential")),
        (10, ("sequential", "parallel")),
        (11, ("async", "async")),
    ],
)
def test_engine_configurations(index, expected):
    namespace, _ = run_block(BLOCKS[index])
    assert config(namespace["engine"]) == expected


class _ItemHandler(BaseHTTPRequestHandler):
    """``GET /item/<i>`` answers ``{"id": i, "tags": [...i tags...]}`` after 50 ms of latency."""

    def do_GET(self) -> None:
        match = re.fullmatch(r"/item/(\d+)", self.path)
        if match is None:
            self.send_error(404)
            return
        time.sleep(0.05)
        i = int(match.group(1))
        body = json.dumps({"id": i, "tags": [f"t{k}" for k in range(i % 5)]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.hits += 1  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # 100 clients connect at once
    daemon_threads = True


@pytest.fixture
def api_server(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = _Server(("127.0.0.1", 0), _ItemHandler)
    server.hits = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_async_url_example(api_server):
    host, port = api_server.server_address[:2]
    code = replace(BLOCKS[3], "https://api.example.com", f"http://{host}:{port}")
    start = time.perf_counter()
    namespace, _ = run_block(code)
    elapsed = time.perf_counter() - start
    results = namespace["results"]
    assert len(results) == 100 and api_server.hits == 100
    for i, row in enumerate(results):
        assert row["data"]["id"] == i
        assert row["processed"] == {"count": 2}  # len() of the two-key JSON object
    # 100 requests of 50 ms each take 5 s one after the other.
    assert elapsed < 2.5


def test_numpy_threaded_example():
    namespace, _ = run_block(BLOCKS[5])
    results = namespace["results"]
    assert len(results) == 20
    assert all(row["matrix"].shape == (1000, 1000) for row in results)


def test_fibonacci_parallel_example():
    small = '"n": ' + json.dumps(FIB_SMALL)
    namespace, _ = run_block(replace(BLOCKS[7], FIB_SEED, small))
    assert namespace["results"] == [{"result": fib(n)} for n in FIB_SMALL]


def test_diamond_example(monkeypatch):
    naps: list[tuple[float, float, int]] = []
    real_sleep = time.sleep

    def recorded_sleep(seconds: float) -> None:
        start = time.perf_counter()
        real_sleep(seconds)
        naps.append((start, time.perf_counter(), threading.get_ident()))

    monkeypatch.setattr(time, "sleep", recorded_sleep)
    namespace, _ = run_block(BLOCKS[8])
    assert namespace["result"] == {
        "data": [1, 2, 3, 4, 5],
        "stat_a": 15,
        "stat_b": 5,
        "result": {"sum": 15, "max": 5},
    }
    # load_data, then compute_a and compute_b at the same time, in two threads.
    load, *computes = sorted(naps)
    assert len(computes) == 2 and all(start >= load[1] for start, _, _ in computes)
    (a_start, a_end, a_thread), (b_start, b_end, b_thread) = computes
    assert a_thread != b_thread and b_start < a_end and a_start < b_end


def test_always_measure_example():
    code = replace(BLOCKS[12], "nodes=[...]", "nodes=[process_item]")
    code = replace(code, "items = [...]  # Your data", "items = list(range(50))")
    _, printed = run_block(code)
    lines = printed.strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines] == [
        "sequential",
        "async",
        "threaded",
        "parallel",
    ]


def test_daft_engine_example():
    pytest.importorskip("daft", reason="DaftEngine needs daft (the dev extra installs it)")
    from hypernodes.engines import DaftEngine

    code = replace(BLOCKS[13], "nodes=[...]", "nodes=[process_item]")
    namespace, _ = run_block(code)
    pipeline = namespace["pipeline"]
    assert isinstance(pipeline.engine, DaftEngine) and pipeline.engine.collect is True
    rows = pipeline.map(inputs={"data": [1, 2, 3]}, map_over="data")
    assert rows == [{"processed": 2}, {"processed": 4}, {"processed": 6}]
    assert pipeline.run(inputs={"data": 5}) == {"processed": 10}
