"""The knowledge cache (diagnostics/knowledge/derived.py): the same knowledge from it as without it,
and a cache that is missing, off or broken only costs time."""

from __future__ import annotations

import json

import pytest

from trainwatch.diagnostics.knowledge import derived, load_knowledge
from trainwatch.diagnostics.read.logparse import KEYWORDS
from trainwatch.diagnostics.read.prefilter import chunk_filters, line_filter


@pytest.fixture
def cache_in(tmp_path, monkeypatch):
    def use(value: str) -> None:
        monkeypatch.setenv(derived.CACHE_ENV, value)
        derived.store.cache_clear()

    yield use
    derived.store.cache_clear()


def _everything(knowledge):
    words = KEYWORDS + tuple(knowledge.anchors)
    return (
        [(s.id, s.category, [p.pattern for p in s.line]) for s in knowledge.signatures],
        knowledge.anchors,
        line_filter(knowledge, words).pattern,
        [(a, p.pattern) for a, p in chunk_filters(knowledge, words)],
    )


def test_the_cached_knowledge_is_the_knowledge(tmp_path, cache_in):
    cache_in("off")
    fresh = _everything(load_knowledge(include_user=False))
    assert not any(tmp_path.iterdir())
    cache_in(str(tmp_path))
    first = _everything(load_knowledge(include_user=False))  # derives and writes
    (written,) = tmp_path.glob("knowledge-*.json")
    sections = json.loads(written.read_text())
    assert {"tables", "literals", "prefilter-trie", "prefilter-anchors"} <= set(sections)
    cache_in(str(tmp_path))
    again = _everything(load_knowledge(include_user=False))  # read back from the file
    assert fresh == first == again
    assert not derived.store().added  # nothing had to be derived again


def test_a_broken_cache_is_derived_again_and_replaced(tmp_path, cache_in):
    cache_in(str(tmp_path))
    load_knowledge(include_user=False)
    (written,) = tmp_path.glob("knowledge-*.json")
    written.write_text("{not json")
    (tmp_path / "knowledge-0000000000000000.json").write_text("{}")  # another version's
    cache_in(str(tmp_path))
    knowledge = load_knowledge(include_user=False)
    assert len(knowledge) > 100
    assert [p.name for p in tmp_path.glob("knowledge-*.json")] == [written.name]
    assert "tables" in json.loads(written.read_text())


def test_an_unwritable_cache_only_costs_time(tmp_path, cache_in):
    blocked = tmp_path / "file"
    blocked.write_text("")
    cache_in(str(blocked / "cache"))  # a folder under a regular file cannot be made
    assert len(load_knowledge(include_user=False)) > 100


def test_each_section_keeps_its_newest_entries_only(tmp_path, cache_in, monkeypatch):
    cache_in(str(tmp_path))
    monkeypatch.setitem(derived.SECTION_LIMITS, "prefilter-trie", 2)
    for words in (["alpha"], ["beta"], ["gamma"]):
        derived.remembered("prefilter-trie", derived.words_key(words), lambda w=words: w[0])
    derived.flush()
    (written,) = tmp_path.glob("knowledge-*.json")
    kept = json.loads(written.read_text())["prefilter-trie"]
    assert list(kept.values()) == ["beta", "gamma"]


def test_no_home_directory_means_no_cache(cache_in, monkeypatch):
    cache_in("")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(derived.Path, "expanduser", _no_home)
    assert derived.store().path is None
    assert len(load_knowledge()) > 100  # the user's own folder, under `~`, is skipped too


def _no_home(self):
    raise RuntimeError("Could not determine home directory.")
