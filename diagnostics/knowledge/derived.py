"""What the knowledge files derive to, kept on disk between runs: the built-in files' parsed tables,
the literals each pattern needs and the pre-filter's regex sources.

Deriving them costs a process about 0.2 s (TOML parsing, `sre_parse` of every pattern, two big
tries), which is most of what `trainwatch explain` takes on a small log and a third of the CPU a
short `trainwatch run` uses. Every value is a pure function of its key (a file's bytes, a pattern's
text, a set of words), so one JSON file per trainwatch version and set of built-in files holds
them: `$XDG_CACHE_HOME/trainwatch/knowledge-<hash>.json` (`~/.cache` by default). Compiling the
regexes is left to each process (compiled patterns cannot be stored). A cache that cannot be read
or written is only slower: nothing here ever fails a run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainwatch import __version__

CACHE_ENV = "TRAINWATCH_CACHE"  # a folder to keep it in instead, or "off"
# Entries a section keeps, the oldest dropped first: a user who edits their signature files now and
# then adds a word set (and a pre-filter's sources, ~100 kB) each time.
SECTION_LIMITS = {"prefilter-trie": 4, "prefilter-anchors": 4}
SECTION_LIMIT = 4096
_MISSING = object()


class _Store:
    """The sections of one cache file; `flush` writes it back when something was added."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.sections: dict[str, dict[str, Any]] = {}
        self.added = False
        if path is not None:
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self.sections = loaded
            except (OSError, ValueError):
                pass

    def get(self, section: str, key: str, compute: Callable[[], Any]) -> Any:
        table = self.sections.setdefault(section, {})
        value = table.get(key, _MISSING)
        if value is _MISSING:
            value = compute()
            table[key] = value
            self.added = True
            extra = len(table) - SECTION_LIMITS.get(section, SECTION_LIMIT)
            for old in list(table)[: max(0, extra)]:
                del table[old]
        return value

    def flush(self) -> None:
        if not self.added or self.path is None:
            return
        self.added = False
        folder = self.path.parent
        partial = folder / f".{self.path.name}.{os.getpid()}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("knowledge-*.json"):  # another version's or file set's
                if old != self.path:
                    old.unlink(missing_ok=True)
            partial.write_text(json.dumps(self.sections), encoding="utf-8")
            os.replace(partial, self.path)  # whole or not at all, whoever writes at once
        except OSError:
            # a full disk or a file-size limit cut the write short: leave no piece of it behind
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)


def _folder() -> Path | None:
    chosen = os.environ.get(CACHE_ENV)
    if chosen == "off":
        return None
    try:
        if chosen:
            return Path(chosen).expanduser()
        base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
        return Path(base).expanduser() / "trainwatch"
    except RuntimeError:  # no home directory to expand `~` to (a bare container user): no cache
        return None


@functools.lru_cache(maxsize=1)
def store() -> _Store:
    """This process's cache, named by trainwatch's version, Python's, and the built-in files."""
    from trainwatch.diagnostics.knowledge import BUILTIN_DIR, PHRASES_DIR

    folder = _folder()
    if folder is None:
        return _Store(None)
    digest = hashlib.sha256(f"{__version__} {sys.version_info[:2]}".encode())
    # the files, and the code that derives from them (a changed pre-filter derives other sources)
    derivers = [
        Path(__file__).parents[1] / "read" / "prefilter.py",
        Path(__file__).with_name("matcher.py"),
    ]
    for path in sorted(BUILTIN_DIR.glob("*.toml")) + sorted(PHRASES_DIR.glob("*.toml")) + derivers:
        try:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        except OSError:
            return _Store(None)
    return _Store(folder / f"knowledge-{digest.hexdigest()[:16]}.json")


def remembered(section: str, key: str, compute: Callable[[], Any]) -> Any:
    """`compute()`'s value (JSON-able, a pure function of `key`), from the cache when it has it."""
    return store().get(section, key, compute)


def words_key(words: list[str]) -> str:
    """A short key for a set of words (the pre-filter's sources depend on nothing else)."""
    return hashlib.sha256("\0".join(words).encode()).hexdigest()[:24]


def flush() -> None:
    """Write what this process added, if anything."""
    store().flush()
