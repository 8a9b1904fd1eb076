"""An ``async`` resource holding a loop-bound client works wherever its ``async def`` node runs
(issue 23, "Async resources").

The pattern users reach for first - one ``aiohttp.ClientSession`` for every item - used to fail
("Event loop is closed" under the async executor, "attached to a different loop" under threaded,
even with ``await amap``/``arun``) because the session was built on a throwaway loop.  It is now
built on the loop that runs the node, once per loop, and torn down on that loop.  A real session
talks to a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hypernodes import HypernodesEngine, Pipeline, Resource, node, resource
from hypernodes.model.resources import close_resources

aiohttp = pytest.importorskip("aiohttp", reason="the dev extra installs aiohttp")

pytestmark = pytest.mark.timeout(120)

#: every session the factories made, to check they were all closed on their loops
SESSIONS: list[tuple[aiohttp.ClientSession, asyncio.AbstractEventLoop]] = []
CLOSED_ON: list[bool] = []


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"n": int(self.path.strip("/"))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@resource
async def http_session():
    session = aiohttp.ClientSession()
    loop = asyncio.get_running_loop()
    SESSIONS.append((session, loop))
    yield session
    CLOSED_ON.append(asyncio.get_running_loop() is loop)
    await session.close()


async def _closing(session: aiohttp.ClientSession) -> None:
    CLOSED_ON.append(True)
    await session.close()


@resource(teardown=_closing)
async def plain_session() -> aiohttp.ClientSession:
    session = aiohttp.ClientSession()
    SESSIONS.append((session, asyncio.get_running_loop()))
    return session


@node(output_name="n")
async def fetch(x: int, base: str, session: aiohttp.ClientSession) -> int:
    async with session.get(f"{base}/{x}") as response:
        return (await response.json())["n"] * 2


@pytest.fixture(autouse=True)
def fresh():
    SESSIONS.clear()
    CLOSED_ON.clear()
    yield
    close_resources()


def _pipeline(server: str, factory=http_session) -> Pipeline:
    return Pipeline([fetch], name="fetch").bind(base=server, session=Resource(factory))


def _all_closed() -> None:
    assert SESSIONS, "no session was made"
    assert all(session.closed for session, _ in SESSIONS)
    assert [True] * len(SESSIONS) == CLOSED_ON  # each torn down on the loop it was made on


ITEMS = list(range(40))
EXPECTED = [{"n": 2 * x} for x in ITEMS]


@pytest.mark.parametrize("factory", [http_session, plain_session], ids=["generator", "teardown"])
def test_the_async_executor_uses_one_session_on_its_loop(server, factory):
    with HypernodesEngine(map_executor="async", node_executor="async") as engine:
        rows = _pipeline(server, factory).with_engine(engine).map({"x": ITEMS}, map_over="x")
        assert rows == EXPECTED
        assert len(SESSIONS) == 1
    _all_closed()


@pytest.mark.parametrize("factory", [http_session, plain_session], ids=["generator", "teardown"])
def test_amap_and_arun_use_the_callers_loop(server, factory):
    pipeline = _pipeline(server, factory)

    async def main() -> tuple[list, dict]:
        rows = await pipeline.amap({"x": ITEMS}, map_over="x")
        one = await pipeline.arun({"x": 5})
        return rows, one

    rows, one = asyncio.run(main())
    assert rows == EXPECTED and one == {"n": 10}
    assert len(SESSIONS) == 1  # amap and arun shared the caller's loop's session
    _all_closed()  # asyncio.run closing its loop tore the session down there


def test_a_threaded_map_uses_one_session_per_thread_loop(server):
    with HypernodesEngine(map_executor="threaded", max_workers=4) as engine:
        rows = _pipeline(server).with_engine(engine).map({"x": ITEMS}, map_over="x")
        assert rows == EXPECTED
        loops = {id(loop) for _, loop in SESSIONS}
        assert 1 <= len(SESSIONS) <= 4 and len(loops) == len(SESSIONS)
    _all_closed()  # the engine's shutdown tore each down on its thread's loop


def test_a_sequential_run_and_map_work_too(server):
    pipeline = _pipeline(server)
    assert pipeline.run({"x": 3}) == {"n": 6}
    assert pipeline.map({"x": [1, 2]}, map_over="x") == [{"n": 2}, {"n": 4}]
    assert len(SESSIONS) == 1
    close_resources()
    _all_closed()
