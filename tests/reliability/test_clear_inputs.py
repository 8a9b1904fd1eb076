"""Unclear or silently accepted inputs become clear errors (issue 23, "Unclear or accepted").

Plain ``ValueError``/``TypeError`` from caches, hashers and resources are now HyperNodes errors
that say what to do (still ``ValueError``/``TypeError``, for code that catches those), and
settings that were silently accepted (``Pipeline(name=123)``, ``size_limit=-5``, ...) are refused
where they are given.  ``bind`` and ``map_over`` say why they refuse an output name that
``run()`` accepts as an override.
"""

from __future__ import annotations

import pytest

from hypernodes import DiskCache, MemoryCache, Pipeline, Resource, node, resource
from hypernodes.cache.keys import register_hasher
from hypernodes.exceptions import (
    HyperNodesError,
    InvalidSettingError,
    MapError,
    MappingError,
    SettingValueError,
    UnknownInputError,
)

pytestmark = pytest.mark.timeout(60)


@node(output_name="y")
def inc(x: int) -> int:
    return x + 1


@node(output_name="z")
def double(y: int) -> int:
    return 2 * y


def test_a_short_disk_cache_key_says_how_to_make_one(tmp_path):
    with pytest.raises(SettingValueError, match=r"at least 16 bytes, got 5.*secrets.token_bytes"):
        DiskCache(tmp_path / "c", key="short")


def test_key_and_key_file_together_say_which_to_use(tmp_path):
    with pytest.raises(SettingValueError, match=r"key= or key_file=, not both.*Pass key_file="):
        DiskCache(tmp_path / "c", key="k" * 32, key_file=tmp_path / "key")


def test_a_disk_cache_key_of_the_wrong_kind(tmp_path):
    with pytest.raises(SettingValueError, match=r"key= must be bytes or a string, got int"):
        DiskCache(tmp_path / "c", key=12345678901234567890)


def test_register_hasher_for_a_builtin_says_what_to_do_instead():
    with pytest.raises(InvalidSettingError, match=r"register_hasher\(int, \.\.\.\): .*a class of"):
        register_hasher(int, lambda value: b"")


def test_resource_recipes_of_the_wrong_kind():
    with pytest.raises(InvalidSettingError, match=r"Resource needs a factory function, got 5"):
        Resource(5)
    with pytest.raises(InvalidSettingError, match=r"@resource needs a function"):
        resource(5)


def test_a_pipeline_name_must_be_a_string():
    with pytest.raises(InvalidSettingError, match=r"name= must be a non-empty string, got 123"):
        Pipeline([inc], name=123)
    with pytest.raises(InvalidSettingError, match=r"name= must be a non-empty string"):
        Pipeline([inc]).with_name(["p"])
    assert Pipeline([inc], name="p").with_name(None).name is None


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (
            lambda tmp: DiskCache(tmp / "c", size_limit=-5),
            r"size_limit must be a whole number >= 0",
        ),
        (lambda tmp: MemoryCache(max_entries=-1), r"max_entries must be a whole number >= 0"),
        (lambda tmp: MemoryCache(max_entries=True), r"max_entries must be a whole number"),
    ],
)
def test_negative_cache_sizes_are_refused(make, says, tmp_path):
    with pytest.raises(SettingValueError, match=says):
        make(tmp_path)


def test_an_output_mapping_to_a_number_is_refused():
    with pytest.raises(MappingError, match=r"output_mapping must map names \(strings\) to names"):
        Pipeline([inc], name="p").as_node(output_mapping={"y": 5})


def test_bind_says_why_an_output_name_is_refused():
    pipeline = Pipeline([inc, double], name="p")
    assert pipeline.run({"x": 1, "y": 10}) == {"y": 10, "z": 20}  # an override for run()
    with pytest.raises(
        UnknownInputError, match=r"'y' \(node 'inc'\) is produced by a node"
    ) as info:
        pipeline.bind(y=10)
    assert "bind() takes the pipeline's own inputs only" in str(info.value)
    assert "inputs={'name': value}" in str(info.value)


def test_map_over_says_why_an_output_name_is_refused():
    pipeline = Pipeline([inc, double], name="p")
    with pytest.raises(MapError, match=r"map_over names 'y'.*'y' \(node 'inc'\) is produced by a"):
        pipeline.map({"x": 1, "y": [1, 2]}, map_over="y")


def test_the_new_errors_keep_the_builtin_kinds_code_catches():
    assert issubclass(SettingValueError, ValueError) and issubclass(SettingValueError, TypeError)
    assert issubclass(SettingValueError, HyperNodesError)
    assert issubclass(InvalidSettingError, TypeError)
