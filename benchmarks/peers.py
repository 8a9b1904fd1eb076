"""Side by side: the chain, map and warm-cache workloads through pipefunc and Hamilton.

Run with ``python benchmarks/run.py --peers`` (``make bench-peers`` installs the ``bench``
extra: pipefunc and apache-hamilton).  Each library is driven through its public API the way
its documentation shows; a library that is not installed is reported as such.  The ratio is
the peer's time over ours (above 1: we are faster).
"""

from __future__ import annotations

import shutil
import tempfile
import types
from collections.abc import Callable
from typing import Any

from common import best_of, fmt_s

from hypernodes import DiskCache, Pipeline, node

CHAIN = 50
MAP_ITEMS = 5000
WARM_ITEMS = 500


def _renamed(template: Callable[..., Any], name: str, params: tuple[str, ...]) -> Any:
    """A distinct copy of ``template`` called ``name`` whose parameters are ``params`` (peers
    wire by function and parameter names, so each link of a chain is its own function)."""
    code = template.__code__.replace(co_varnames=params, co_name=name, co_qualname=name)
    func = types.FunctionType(code, {}, name)
    func.__annotations__ = {**dict.fromkeys(params, int), "return": int}
    return func


def _inc(v):  # type: ignore[no-untyped-def]
    return v + 1


def _a(x):  # type: ignore[no-untyped-def]
    return x + 1


def _b(a):  # type: ignore[no-untyped-def]
    return a * 2


def _c(a, b):  # type: ignore[no-untyped-def]
    return a + b


def _chain_functions() -> list[Any]:
    return [_renamed(_inc, f"v{i + 1}", (f"v{i}",)) for i in range(CHAIN)]


def _three() -> list[Any]:
    return [_renamed(_a, "a", ("x",)), _renamed(_b, "b", ("a",)), _renamed(_c, "c", ("a", "b"))]


# ---------------------------------------------------------------------------------------------
# HyperNodes


def ours(quick: bool) -> dict[str, float]:
    chain = Pipeline([node(f, output_name=f.__name__) for f in _chain_functions()])
    last = f"v{CHAIN}"
    calls = 200 if quick else 2000
    chain.run({"v0": 0}, output_name=last)
    t_chain = best_of(lambda: [chain.run({"v0": 0}, output_name=last) for _ in range(calls)], 5)
    three = Pipeline([node(f, output_name=f.__name__) for f in _three()])
    xs = list(range(MAP_ITEMS))
    t_map = best_of(lambda: three.map({"x": xs}, map_over="x"), 3 if quick else 7)
    path = tempfile.mkdtemp(prefix="hn-peers-")
    try:
        warm_xs = list(range(WARM_ITEMS))
        three.with_cache(DiskCache(path)).map({"x": warm_xs}, map_over="x")

        def warm() -> None:
            with DiskCache(path) as cache:
                three.with_cache(cache).map({"x": warm_xs}, map_over="x")

        t_warm = best_of(warm, 3 if quick else 5)
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return {
        "chain": t_chain / calls / CHAIN,
        "map": t_map / MAP_ITEMS,
        "warm": t_warm / WARM_ITEMS,
    }


# ---------------------------------------------------------------------------------------------
# pipefunc: @pipefunc functions in a Pipeline; map with mapspecs; a disk cache on the pipeline


def pipefunc_times(quick: bool) -> dict[str, float]:
    from pipefunc import Pipeline as PfPipeline
    from pipefunc import pipefunc

    chain = PfPipeline([pipefunc(output_name=f.__name__)(f) for f in _chain_functions()])
    last = f"v{CHAIN}"
    calls = 100 if quick else 1000
    chain(last, v0=0)
    t_chain = best_of(lambda: [chain(last, v0=0) for _ in range(calls)], 5)

    a, b, c = _three()
    mapped = PfPipeline(
        [
            pipefunc(output_name="a", mapspec="x[i] -> a[i]")(a),
            pipefunc(output_name="b", mapspec="a[i] -> b[i]")(b),
            pipefunc(output_name="c", mapspec="a[i], b[i] -> c[i]")(c),
        ]
    )
    xs = list(range(MAP_ITEMS))

    def run_map() -> None:
        mapped.map({"x": xs}, run_folder=None, parallel=False, storage="dict")

    run_map()
    t_map = best_of(run_map, 2 if quick else 3)

    path = tempfile.mkdtemp(prefix="pf-peers-")
    try:

        def cached() -> Any:
            return PfPipeline(
                [pipefunc(output_name=f.__name__, cache=True)(f) for f in _three()],
                cache_type="disk",
                cache_kwargs={"cache_dir": path},
            )

        warm_xs = list(range(WARM_ITEMS))
        filler = cached()
        for x in warm_xs:
            filler("c", x=x)

        def warm() -> None:
            pipeline = cached()  # a fresh pipeline: nothing served from its memory
            for x in warm_xs:
                pipeline("c", x=x)

        t_warm = best_of(warm, 2 if quick else 3)
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return {
        "chain": t_chain / calls / CHAIN,
        "map": t_map / MAP_ITEMS,
        "warm": t_warm / WARM_ITEMS,
    }


# ---------------------------------------------------------------------------------------------
# Hamilton: functions of a module, a driver; one execute per item (its way to map); its cache


def _module(functions: list[Any]) -> types.ModuleType:
    from hamilton import ad_hoc_utils

    return ad_hoc_utils.create_temporary_module(*functions)


def hamilton_times(quick: bool) -> dict[str, float]:
    from hamilton import driver

    chain = driver.Builder().with_modules(_module(_chain_functions())).build()
    last = f"v{CHAIN}"
    calls = 20 if quick else 200
    chain.execute([last], inputs={"v0": 0})
    t_chain = best_of(lambda: [chain.execute([last], inputs={"v0": 0}) for _ in range(calls)], 3)

    three = driver.Builder().with_modules(_module(_three())).build()
    items = 500 if quick else 2000
    t_map = best_of(lambda: [three.execute(["c"], inputs={"x": x}) for x in range(items)], 3)

    path = tempfile.mkdtemp(prefix="hamilton-peers-")
    try:
        module = _module(_three())

        def cached() -> Any:
            return driver.Builder().with_modules(module).with_cache(path=path).build()

        warm_xs = list(range(WARM_ITEMS // 5 if quick else WARM_ITEMS))
        filler = cached()
        for x in warm_xs:
            filler.execute(["c"], inputs={"x": x})

        def warm() -> None:
            dr = cached()
            for x in warm_xs:
                dr.execute(["c"], inputs={"x": x})

        t_warm = best_of(warm, 2)
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return {
        "chain": t_chain / calls / CHAIN,
        "map": t_map / items,
        "warm": t_warm / len(warm_xs),
    }


PEERS: dict[str, Callable[[bool], dict[str, float]]] = {
    "pipefunc": pipefunc_times,
    "hamilton": hamilton_times,
}

ROWS = {
    "chain": f"{CHAIN}-node chain, run (per node)",
    "map": f"3 nodes, map {MAP_ITEMS} items (per item)",
    "warm": f"3 nodes, {WARM_ITEMS} items, disk cache warm (per item)",
}


def side_by_side(quick: bool) -> list[tuple[str, ...]]:
    """Rows of ``(workload, ours, peer times with ratios...)``."""
    import sys

    print("running: peers: hypernodes ...", file=sys.stderr, flush=True)
    mine = ours(quick)
    columns: dict[str, dict[str, float] | str] = {}
    for name, measure in PEERS.items():
        print(f"running: peers: {name} ...", file=sys.stderr, flush=True)
        try:
            columns[name] = measure(quick)
        except ImportError as exc:
            columns[name] = f"not installed ({exc.name}): pip install -e '.[bench]'"
    rows = []
    for key, label in ROWS.items():
        row = [label, fmt_s(mine[key])]
        for name in PEERS:
            got = columns[name]
            if isinstance(got, str):
                row.append(got)
            else:
                row.append(f"{fmt_s(got[key])} ({got[key] / mine[key]:.0f}x ours)")
        rows.append(tuple(row))
    return rows
