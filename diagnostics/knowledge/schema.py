"""The signature schema: one `Signature` per `[[signature]]` table, validated with clear errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from trainwatch.diagnostics.errors import UsageError
from trainwatch.diagnostics.verdict import CATEGORIES

ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ROLES = ("root", "cascade")
KNOWN_KEYS = {
    "id",
    "category",
    "subtype",
    "role",
    "frameworks",
    "title",
    "explanation",
    "advice",
    "doc",
    "confidence",
    "exception",
    "message",
    "line",
    "exit_signal",
    "example",
    "needs_corroboration",
    "priority",
    "at_end",
    "whole_run",
    "raised_at",
    "raised_in",
    "module_is_own_file",
}


class SignatureError(UsageError):
    """A signature file that cannot be used: names the file, the signature and the key."""


_NOT_LOOKED_UP = object()  # a pattern's literals before the cache was asked


class SignaturePattern:
    """A signature's `message` or `line` regex, compiled the first time a text holding one of its
    required literals is searched.

    Compiling all ~700 patterns of the built-in files took ~0.15 s of every process that loads the
    knowledge, more than half of what `trainwatch explain` takes on a small log; a log gets only a
    few of them past their literals. The literals are those of `matcher.required_literals`, kept
    in the knowledge cache (knowledge/derived.py); a text without any of them cannot match, so the
    answer is the compiled regex's answer. A user's file is compiled when it is loaded, so that a
    bad pattern is named before the run starts.
    """

    __slots__ = ("pattern", "_literals", "_regex")

    def __init__(self, pattern: str, regex: re.Pattern[str] | None = None) -> None:
        self.pattern = pattern
        self._regex = regex
        self._literals: object = _NOT_LOOKED_UP

    @property
    def literals(self) -> tuple[str, ...] | None:
        """Strings one of which every match holds, or None when there is no such set."""
        if self._literals is _NOT_LOOKED_UP:
            from trainwatch.diagnostics.knowledge.matcher import cached_literals

            self._literals = cached_literals(self.pattern)
        return self._literals  # type: ignore[return-value]

    def search(self, text: str) -> re.Match[str] | None:
        literals = self.literals
        if literals is not None:
            for literal in literals:  # a plain loop: every signature's patterns pass here
                if literal in text:
                    break
            else:
                return None
        if self._regex is None:
            self._regex = re.compile(self.pattern)
        return self._regex.search(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SignaturePattern) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"SignaturePattern({self.pattern!r})"


@dataclass(frozen=True)
class Example:
    """A log excerpt that must (or must not) produce a match of its signature."""

    match: bool
    text: str


@dataclass(frozen=True)
class Signature:
    """One known failure: what it looks like, what it means, and what to do."""

    id: str
    category: str
    subtype: str | None
    role: str  # "root" or "cascade"
    title: str
    explanation: str
    advice: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    doc: str | None = None
    confidence: float = 0.8
    exception: tuple[str, ...] = ()
    message: tuple[SignaturePattern, ...] = ()
    line: tuple[SignaturePattern, ...] = ()
    exit_signal: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()
    # Extensions (docs/signatures.md): a verdict from this signature alone is an OOM claim that live
    # evidence must back (the kill rules); `priority` breaks ties between signatures of equal
    # confidence; `at_end`: its lines count only among the log's last lines, after its last
    # traceback (a run's closing words, "Training completed").
    needs_corroboration: bool = False
    priority: int = 0
    at_end: bool = False
    # its lines speak of the whole run (the loop ran short of its data, a step that returns no
    # loss trains nothing), not of an incident the program went on from: a loop that finished
    # after them does not make them handled
    whole_run: bool = False
    # patterns one of which the source line of the frame the exception was raised in must match
    # (an unpacking assignment `a, b = f(...)`): what was being done there, where the message is
    # the same for a bug and for a changed API
    raised_at: tuple[SignaturePattern, ...] = ()
    raised_in: tuple[SignaturePattern, ...] = ()
    # the module a `message` pattern's `module` group names is a file of the program's own (one of
    # the traceback's frames is in it, or the message's path is): a script named like a package
    module_is_own_file: bool = False
    layer: str = "signature"  # "signature" (specific) or "phrase" (a generic family under them)
    source: str = ""  # the file it came from
    # the class names of the `exception` entries: an entry matches only an exception of its class
    # name (matcher.type_matches), so a set test passes over the others at once
    raised_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = frozenset(entry.rsplit(".", 1)[-1] for entry in self.exception)
        object.__setattr__(self, "raised_names", names)


# A phrase family answers where no signature does, and says so by being less sure.
PHRASE_MAX_CONFIDENCE = 0.8


def build_signature(
    table: dict[str, Any], source: str, layer: str = "signature", compile_now: bool = True
) -> Signature:
    """Validate one `[[signature]]` table; raise SignatureError naming what is wrong.
    `compile_now=False` leaves the patterns to be compiled at their first use (the built-in files,
    whose every pattern the tests compile)."""
    sid = table.get("id")
    where = f"{source}: signature {sid!r}" if sid else f"{source}: a signature without an id"
    if not isinstance(sid, str) or not ID_RE.match(sid):
        raise SignatureError(f"{where}: `id` must be kebab-case (a-z, 0-9, single dashes)")
    unknown = set(table) - KNOWN_KEYS
    if unknown:
        raise SignatureError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    category = table.get("category")
    if category not in CATEGORIES:
        raise SignatureError(f"{where}: `category` must be one of {', '.join(CATEGORIES)}")
    subtype = table.get("subtype")
    if subtype is not None and (
        not isinstance(subtype, str) or not subtype.startswith(f"{category}/")
    ):
        raise SignatureError(f"{where}: `subtype` must be written '{category}/<name>'")
    role = table.get("role", "root")
    if role not in ROLES:
        raise SignatureError(f"{where}: `role` must be 'root' or 'cascade'")
    for key in ("title", "explanation"):
        if not isinstance(table.get(key), str) or not table[key].strip():
            raise SignatureError(f"{where}: `{key}` is required (a non-empty string)")
    confidence = table.get("confidence", 0.8)
    if not isinstance(confidence, (int, float)) or not 0 < confidence <= 1:
        raise SignatureError(f"{where}: `confidence` must be a number in (0, 1]")
    exception = _strings(table, "exception", where)
    message = _patterns(table, "message", where, compile_now)
    line = _patterns(table, "line", where, compile_now)
    exit_signal = tuple(s.upper() for s in _strings(table, "exit_signal", where))
    if not (exception or message or line or exit_signal):
        raise SignatureError(
            f"{where}: give at least one of `exception`, `message`, `line`, `exit_signal`"
        )
    examples = []
    for raw in table.get("example", []):
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("match"), bool)
            or not isinstance(raw.get("text"), str)
        ):
            raise SignatureError(
                f"{where}: each [[signature.example]] needs `match` (true/false) and `text`"
            )
        examples.append(Example(raw["match"], raw["text"]))
    doc = table.get("doc")
    if doc is not None and not isinstance(doc, str):
        raise SignatureError(f"{where}: `doc` must be a URL string")
    priority = table.get("priority", 0)
    if not isinstance(priority, int):
        raise SignatureError(f"{where}: `priority` must be an integer")
    if layer == "phrase" and confidence > PHRASE_MAX_CONFIDENCE:
        raise SignatureError(
            f"{where}: a phrase family's `confidence` is at most {PHRASE_MAX_CONFIDENCE}"
        )
    at_end = _line_flag(table, "at_end", where)
    whole_run = _line_flag(table, "whole_run", where)
    raised_at = _patterns(table, "raised_at", where, compile_now)
    raised_in = _patterns(table, "raised_in", where, compile_now)
    for key, given in (("raised_at", raised_at), ("raised_in", raised_in)):
        if given and not (exception or message):
            raise SignatureError(f"{where}: `{key}` needs `exception` or `message`")
    module_is_own_file = table.get("module_is_own_file", False)
    if not isinstance(module_is_own_file, bool) or (
        module_is_own_file and not (message and all("(?P<module>" in p.pattern for p in message))
    ):
        raise SignatureError(
            f"{where}: `module_is_own_file` is true or false, and needs `message` patterns that "
            "each name a `(?P<module>...)` group"
        )
    return Signature(
        id=sid,
        category=category,
        subtype=subtype,
        role=role,
        title=table["title"].strip(),
        explanation=" ".join(table["explanation"].split()),
        advice=_strings(table, "advice", where),
        frameworks=_strings(table, "frameworks", where),
        doc=doc,
        confidence=float(confidence),
        exception=exception,
        message=message,
        line=line,
        exit_signal=exit_signal,
        examples=tuple(examples),
        needs_corroboration=bool(table.get("needs_corroboration", False)),
        priority=priority,
        at_end=at_end,
        whole_run=whole_run,
        raised_at=raised_at,
        raised_in=raised_in,
        module_is_own_file=module_is_own_file,
        layer=layer,
        source=source,
    )


def _line_flag(table: dict[str, Any], key: str, where: str) -> bool:
    """A flag about a signature's `line` patterns (`at_end`, `whole_run`): true or false, and
    true only where there are lines."""
    flag = table.get(key, False)
    if not isinstance(flag, bool) or (flag and not table.get("line")):
        raise SignatureError(f"{where}: `{key}` is true or false, and needs `line` patterns")
    return flag


def _strings(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SignatureError(f"{where}: `{key}` must be a list of strings")
    return tuple(value)


def _patterns(
    table: dict[str, Any], key: str, where: str, compile_now: bool
) -> tuple[SignaturePattern, ...]:
    patterns = []
    for text in _strings(table, key, where):
        try:
            patterns.append(SignaturePattern(text, re.compile(text) if compile_now else None))
        except re.error as exc:
            raise SignatureError(
                f"{where}: `{key}` pattern {text!r} is not a valid regex: {exc}"
            ) from None
    return tuple(patterns)
