"""Patching a node in tests: ``Pipeline.with_node_function`` and ``hypernodes.testing.patch``."""

from __future__ import annotations

import pytest

from hypernodes import MemoryCache, Pipeline, node
from hypernodes.exceptions import NodeSignatureError, TypeMismatchError, UnknownNodeError
from hypernodes.testing import patch


@node(output_name="page", retries=2)
def fetch(url: str, timeout: float = 5.0) -> str:
    raise ConnectionError(f"no network in tests: {url}")


@node(output_name="words")
def count(page: str) -> int:
    return len(page.split())


@node(output_name=("q", "r"))
def split(words: int) -> tuple[int, int]:
    return divmod(words, 3)


def make() -> Pipeline:
    return Pipeline([fetch, count, split], name="crawl")


def fake_fetch(url: str, timeout: float) -> str:
    return f"{url} took {timeout}"


def test_with_node_function_returns_a_copy_calling_the_replacement():
    pipeline = make()
    patched = pipeline.with_node_function("fetch", fake_fetch)
    assert patched.run({"url": "a b"}) == {"page": "a b took 5.0", "words": 4, "q": 1, "r": 1}
    with pytest.raises(ConnectionError):
        pipeline.run({"url": "a b"})
    # options and wiring stay: the node keeps its name, retries and default
    replaced = next(n for n in patched.nodes if n.name == "fetch")
    assert replaced.retries == 2 and replaced.outputs == ("page",)
    assert patched.root_args == pipeline.root_args


def test_parameters_in_another_order_and_defaults_kept():
    patched = make().with_node_function("fetch", lambda timeout, url: f"{timeout}:{url}")
    assert patched.run({"url": "u"}, output_name="page") == {"page": "5.0:u"}
    assert patched.run({"url": "u", "timeout": 1}, output_name="page") == {"page": "1:u"}


def test_renamed_inputs_are_wired_by_parameter_name():
    renamed = Pipeline([fetch.with_inputs(url="address"), count])
    patched = renamed.with_node_function("fetch", lambda url, timeout: url.upper())
    assert patched.run({"address": "x y"}) == {"page": "X Y", "words": 2}


def test_async_replacement_and_a_node_as_replacement():
    async def afetch(url: str, timeout: float) -> str:
        return url * 2

    assert make().with_node_function("fetch", afetch).run({"url": "ab "})["words"] == 2

    @node(output_name="something_else")
    def other(url: str, timeout: float) -> str:
        return "one"

    assert make().with_node_function("fetch", other).run({"url": "x"})["page"] == "one"


def test_signature_that_does_not_fit_is_a_named_error():
    with pytest.raises(NodeSignatureError, match=r"lacks \['timeout'\].*same parameter names"):
        make().with_node_function("fetch", lambda url: url)
    with pytest.raises(NodeSignatureError, match=r"also takes \['retries'\]"):
        make().with_node_function("fetch", lambda url, timeout, retries=1: url)

    def three(words: int) -> tuple[int, int, int]:
        return (1, 2, 3)

    with pytest.raises(NodeSignatureError, match=r"annotated to return 3 values.*2 outputs"):
        make().with_node_function("split", three)

    @node(output_name=("a", "b", "c"))
    def three_outputs(words: int) -> tuple[int, int, int]:
        return (1, 2, 3)

    with pytest.raises(NodeSignatureError, match="outputs"):
        make().with_node_function("split", three_outputs)
    with pytest.raises(NodeSignatureError, match="must be a function"):
        make().with_node_function("fetch", 3)  # type: ignore[arg-type]


def test_unknown_node_is_a_named_error():
    with pytest.raises(UnknownNodeError, match=r"no node 'fecth' \(did you mean 'fetch'\?\)"):
        make().with_node_function("fecth", fake_fetch)
    with pytest.raises(UnknownNodeError, match="not a nested pipeline"):
        make().with_node_function("fetch.inner", fake_fetch)


def test_type_checks_apply_to_the_replacement():
    def returns_bytes(url: str, timeout: float) -> bytes:
        return b""

    with pytest.raises(TypeMismatchError, match="page"):
        make().with_node_function("fetch", returns_bytes)


def test_runtime_type_checks_check_the_replacement():
    pytest.importorskip("typeguard", reason="type_check='runtime' needs typeguard")
    pipeline = Pipeline([fetch, count], type_check="runtime")

    def lies(url: str, timeout: float) -> str:
        return 3  # type: ignore[return-value]

    with pytest.raises(TypeMismatchError):
        pipeline.with_node_function("fetch", lies).run({"url": "x"})


def test_a_node_of_a_nested_pipeline_by_its_path():
    outer = Pipeline([make().as_node(name="inner")], name="outer")
    patched = outer.with_node_function("inner.fetch", fake_fetch)
    assert patched.run({"url": "z"})["page"] == "z took 5.0"
    with pytest.raises(UnknownNodeError, match="nested pipeline; name one of its nodes"):
        outer.with_node_function("inner", fake_fetch)
    with pytest.raises(ConnectionError):
        outer.run({"url": "z"})


def test_patch_context_manager_patches_in_place_and_restores():
    pipeline = make()
    parent = Pipeline([pipeline.as_node(name="inner")], name="parent")
    with patch(pipeline, "fetch", fake_fetch) as patched:
        assert patched is pipeline
        assert pipeline.run({"url": "a"})["page"] == "a took 5.0"
        assert parent.run({"url": "b"})["page"] == "b took 5.0"  # a parent sees it too
    with pytest.raises(ConnectionError):
        pipeline.run({"url": "a"})
    with pytest.raises(RuntimeError), patch(pipeline, "fetch", fake_fetch):
        raise RuntimeError("the test failed")
    with pytest.raises(ConnectionError):
        pipeline.run({"url": "a"})  # restored however the block ends


def test_patched_function_has_its_own_cache_entries():
    cache = MemoryCache()
    calls: list[str] = []

    def counted(url: str, timeout: float) -> str:
        calls.append(url)
        return "real page"

    base = make().with_node_function("fetch", counted).with_cache(cache)
    base.run({"url": "u"})
    base.run({"url": "u"})
    assert calls == ["u"]  # the second run hit the cache
    other = base.with_node_function("fetch", lambda url, timeout: "fake page")
    assert other.run({"url": "u"})["page"] == "fake page"  # not the cached real page
