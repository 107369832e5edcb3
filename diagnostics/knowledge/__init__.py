"""The knowledge base: failure signatures and, under them, generic phrase families, as TOML data;
their schema, the loader and the matcher.

Two layers. `signatures/` name a specific cause with specific advice (a CUDA out-of-memory, a
corrupt JPEG). `phrases/` hold families of wordings per category (out-of-memory in any
framework's words, NaN in any metric, a signal, an errno, a scheduler's state), each with a lower
confidence and category-level advice; they answer where no signature does. Both are checked by
the same schema and their examples run through the real parser (tests/unit/test_signatures.py).
"""

from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path

TYPE_CHECKING = False  # not typing's: imported before the program starts (diagnostics/startup.py)
if TYPE_CHECKING:
    import re

    from trainwatch.diagnostics.knowledge.matcher import Match, SignatureGates
    from trainwatch.diagnostics.knowledge.schema import Signature, SignaturePattern

__all__ = [
    "Example",
    "Knowledge",
    "Match",
    "Signature",
    "SignatureError",
    "load_knowledge",
    "default_knowledge",
    "user_signature_files",
    "type_matches",
]

BUILTIN_DIR = Path(__file__).resolve().parent / "signatures"
PHRASES_DIR = Path(__file__).resolve().parent / "phrases"
USER_DIR = Path("~/.config/trainwatch/signatures")
ENV_VAR = "TRAINWATCH_SIGNATURES"  # extra files or folders, separated by os.pathsep

# The schema and the matcher are loaded on first use (PEP 562): `trainwatch run` asks for the user's
# signature files before the program starts, and the ~400 regexes are compiled only once it prints.
_LAZY = {
    "Example": "schema",
    "Signature": "schema",
    "SignatureError": "schema",
    "Match": "matcher",
    "type_matches": "matcher",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


class Knowledge:
    """A loaded, validated set of signatures, with what the log parser needs to find their lines
    fast.
    """

    def __init__(self, signatures: tuple[Signature, ...], files: tuple[str, ...] = ()) -> None:
        self.signatures = signatures
        self.files = files
        from trainwatch.diagnostics.knowledge.matcher import LiteralIndex, cached_literals
        from trainwatch.diagnostics.knowledge.signals import phrases

        def literals(pattern: re.Pattern[str] | SignaturePattern) -> tuple[str, ...] | None:
            return cached_literals(pattern.pattern)

        # The lines the parser notes; closing words (`at_end`) are read from the log's last lines.
        self._noted = LiteralIndex(
            (p for s in signatures if not s.at_end for p in s.line), literals
        )
        anchors = set(self._noted.literals)
        for pattern in phrases():
            anchors.update(literals(pattern) or ())
        # Literals the log parser's pre-filter must look for, beyond its own keywords.
        self.anchors: tuple[str, ...] = tuple(sorted(anchors))
        self._gates: SignatureGates | None = None

    def notes(self, text: str) -> bool:
        """Does any signature's line pattern (at-end ones aside) match this line?"""
        return self._noted.any(text)

    def __len__(self) -> int:
        return len(self.signatures)

    def get(self, sid: str) -> Signature | None:
        return next((s for s in self.signatures if s.id == sid), None)

    def match(self, chains, log, signals) -> list[Match]:
        """Every signature and phrase family that fits the exception chains, the log's notable
        lines (and, for `at_end` ones, its last lines) and the exit signals."""
        from trainwatch.diagnostics.knowledge.matcher import SaidLines, SignatureGates, match_all

        notable = log.notable if log is not None else ()
        ending = log.ending if log is not None else ()
        chains = tuple(chains)
        if self._gates is None:  # built at the first match: a run's knowledge may never match
            self._gates = SignatureGates(self.signatures)
        said = SaidLines(notable, ending)
        candidates = self._gates.candidates(chains, said)
        return match_all(candidates, chains, notable, ending, dict(signals), said)


def load_file(path: str | os.PathLike[str]) -> tuple[Signature, ...]:
    """Read and validate one signature file; a bad file raises SignatureError naming it."""
    from trainwatch.diagnostics.knowledge.derived import remembered
    from trainwatch.diagnostics.knowledge.schema import SignatureError, build_signature

    p = Path(path)
    builtin = p.parent in (BUILTIN_DIR, PHRASES_DIR)
    try:
        if builtin:  # the cache is named by these files' bytes: their tables can be kept in it
            data = remembered("tables", f"{p.parent.name}/{p.name}", lambda: _parse_toml(p))
        else:
            data = _parse_toml(p)
    except OSError as exc:
        raise SignatureError(f"cannot read signature file {p}: {exc.strerror or exc}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError, UnicodeDecodeError
        raise SignatureError(f"{p}: not valid TOML: {exc}") from None
    tables = data.get("signature", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SignatureError(f"{p}: expected [[signature]] tables")
    layer = "phrase" if p.parent == PHRASES_DIR else "signature"
    out = []
    for table in tables:
        try:
            out.append(build_signature(table, str(p), layer, compile_now=not builtin))
        except SignatureError as exc:  # name the line, so a user finds the table at once
            raise SignatureError(f"{exc.message} (line {_line_of(p, table.get('id'))})") from None
    return tuple(out)


def _parse_toml(path: Path) -> dict:
    import tomllib

    with path.open("rb") as fh:
        return tomllib.load(fh)


def _line_of(path: Path, sid: object) -> int | str:
    """The line of a file where signature `sid` is defined ("?" when it cannot be found)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "?"
    wanted = f'id = "{sid}"' if isinstance(sid, str) else None
    for number, line in enumerate(lines, 1):
        if wanted is not None and line.strip() == wanted:
            return number
    for number, line in enumerate(lines, 1):  # no id: the first table
        if line.strip() == "[[signature]]":
            return number
    return "?"


def user_signature_files() -> tuple[Path, ...]:
    """`$TRAINWATCH_SIGNATURES` (files or folders) and `~/.config/trainwatch/signatures/*.toml`."""
    found: list[Path] = []
    for entry in filter(None, os.environ.get(ENV_VAR, "").split(os.pathsep)):
        p = Path(entry).expanduser()
        try:
            found.extend(sorted(p.glob("*.toml")) if p.is_dir() else [p])
        except OSError:  # named, but not to be listed: its loading says why, in one line
            found.append(p)
    try:
        user_dir = USER_DIR.expanduser()
        if user_dir.is_dir():
            found.extend(sorted(user_dir.glob("*.toml")))
    except (RuntimeError, OSError):
        # no home directory (a bare container user), or one this user may not read (`setpriv`
        # to another user with HOME left as it was, a real run's exit 70): no folder of one's own
        pass
    return tuple(found)


def load_knowledge(
    extra_files=(), include_user: bool = True, include_builtin: bool = True
) -> Knowledge:
    """The built-in files, then the user's, then `extra_files`; a later signature with an existing
    id replaces it.
    """
    files: list[Path] = []
    if include_builtin:
        files = sorted(BUILTIN_DIR.glob("*.toml")) + sorted(PHRASES_DIR.glob("*.toml"))
    if include_user:
        files.extend(user_signature_files())
    files.extend(Path(f) for f in extra_files)
    from trainwatch.diagnostics.knowledge.schema import SignatureError

    by_id: dict[str, Signature] = {}
    for path in files:
        seen_here: set[str] = set()
        for sig in load_file(path):
            builtin = path.parent in (BUILTIN_DIR, PHRASES_DIR)
            if sig.id in seen_here or (sig.id in by_id and builtin):
                raise SignatureError(f"{path}: duplicate signature id {sig.id!r}")
            seen_here.add(sig.id)
            by_id[sig.id] = sig  # a user's signature may deliberately override a built-in one
    knowledge = Knowledge(tuple(by_id.values()), tuple(str(f) for f in files))
    from trainwatch.diagnostics.knowledge.derived import flush

    flush()
    return knowledge


@functools.lru_cache(maxsize=1)
def default_knowledge() -> Knowledge:
    """The built-in and user signatures, loaded once per process."""
    return load_knowledge()
