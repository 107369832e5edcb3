"""Matching signatures against evidence: exceptions, log lines and exit signals, each match citing
what it saw.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

# the stdlib's own regex parser: the only way to read a pattern's literals
from re import (
    _parser as sre_parse,
)

from trainwatch.diagnostics.evidence import ExceptionChain, LogLine, RaisedException
from trainwatch.diagnostics.knowledge.schema import Signature
from trainwatch.diagnostics.verdict import Cited


@dataclass(frozen=True)
class Match:
    """One signature that fits the evidence, and the evidence it fits."""

    signature: Signature
    via: str  # "exception" (first-hand), "line" (a log line), or "signal" (the exit signal alone)
    cited: tuple[Cited, ...]
    exception: RaisedException | None = None
    chain: ExceptionChain | None = None
    depth: int = 0  # the exception's index in its chain: 0 is the one raised first
    order: int = 0  # where in the log the evidence stands (a line number), for "which came first"


def type_matches(entry: str, qualified: str) -> bool:
    """`exception` entries match by qualified name, by dotted suffix, or by short name."""
    if entry == qualified or qualified.endswith("." + entry):
        return True
    short = qualified.rsplit(".", 1)[-1]
    if "." not in entry:
        return entry == short
    # `torch.OutOfMemoryError` also matches `torch.cuda.OutOfMemoryError`: same package, same class
    # name.
    return (
        entry.rsplit(".", 1)[-1] == short and entry.split(".", 1)[0] == qualified.split(".", 1)[0]
    )


class LiteralIndex:
    """Line patterns filed under the literals one of which their every match holds
    (`required_literals`), and those literals under a rare piece of each (`rare_piece`): a line is
    tried only against the patterns whose literal it contains, found from the pieces it holds; a
    pattern without such a literal is tried on every line.
    """

    def __init__(
        self,
        patterns: Iterable[re.Pattern[str]],
        literals: Callable[[re.Pattern[str]], tuple[str, ...] | None],
    ) -> None:
        by_literal: dict[str, list[re.Pattern[str]]] = {}
        unanchored: list[re.Pattern[str]] = []
        for pattern in dict.fromkeys(patterns):
            needed = literals(pattern)
            if not _pieced(needed):
                unanchored.append(pattern)
                continue
            for literal in needed:
                by_literal.setdefault(literal, []).append(pattern)
        self.literals = tuple(by_literal)
        self._filed = tuple((literal, tuple(ps)) for literal, ps in by_literal.items())
        self._unanchored = tuple(unanchored)
        self._by_piece: (
            dict[tuple[str, ...], list[tuple[str, tuple[re.Pattern[str], ...]]]] | None
        ) = None

    def any(self, text: str) -> bool:
        """Does any pattern match `text`?"""
        if any(p.search(text) for p in self._unanchored):
            return True
        return any(p.search(text) for literal, ps in self._held(text) for p in ps)

    def _held(self, text: str):
        """The (literal, patterns) pairs whose literal `text` holds."""
        if len(text) >= LONG_TEXT:
            return ((literal, ps) for literal, ps in self._filed if literal in text)
        if self._by_piece is None:  # built at the first line: most lines never get here
            self._by_piece = {}
            for literal, ps in self._filed:
                self._by_piece.setdefault(tuple(rare_piece(literal)), []).append((literal, ps))
        by_piece = self._by_piece
        return (
            (literal, ps)
            for piece in by_piece.keys() & grams(text)
            for literal, ps in by_piece[piece]
            if literal in text
        )


class SaidLines:
    """The texts of the lines (and of the last lines) as one string each, made once per log: a
    line pattern none of whose required literals is anywhere in them cannot match any line, and
    is passed over without trying it line by line (that was most of matching a small log)."""

    def __init__(self, lines: tuple[LogLine, ...], ending: tuple[LogLine, ...]) -> None:
        self._lines = {False: lines, True: ending}
        self._said: dict[bool, str] = {}

    def text(self, at_end: bool) -> str:
        if at_end not in self._said:
            self._said[at_end] = _said(self._lines[at_end])
        return self._said[at_end]

    def live(self, patterns, at_end: bool) -> tuple:
        """The patterns that may match one of the lines."""
        said = self.text(at_end)
        live = []
        for pattern in patterns:  # a plain loop: this runs for every signature of every log
            literals = pattern.literals
            if literals is None:
                live.append(pattern)
                continue
            for literal in literals:
                if literal in said:
                    live.append(pattern)
                    break
        return tuple(live)


def match_signature(
    sig: Signature,
    chains: tuple[ExceptionChain, ...],
    lines: tuple[LogLine, ...],
    signals: dict[str, Cited],
    ending: tuple[LogLine, ...] = (),
    said: SaidLines | None = None,
) -> Match | None:
    """The semantics of docs/signatures.md: any of the exception and line tests, and the signal test
    if given. An `at_end` signature's lines are looked for among `ending`, the log's last lines.
    """
    found: Match | None = None
    if sig.exception or sig.message:
        found = _match_exception(sig, chains)
    if found is None and sig.line:
        patterns = sig.line if said is None else said.live(sig.line, sig.at_end)
        if patterns:
            found = _match_line(sig, patterns, ending if sig.at_end else lines)
        if found is not None and sig.exception and _raised_other(sig, found, chains):
            found = None
        if found is not None:
            found = _with_raised(found, chains)
    if sig.exit_signal:
        hit = next((signals[s] for s in sig.exit_signal if s in signals), None)
        if hit is None:
            return None
        if found is None:
            if sig.exception or sig.message or sig.line:
                return None
            return Match(sig, "signal", (hit,), order=_order(hit))
        return Match(
            sig,
            found.via,
            found.cited + (hit,),
            found.exception,
            found.chain,
            found.depth,
            found.order,
        )
    return found


def match_all(sigs, chains, lines, ending, signals, said: SaidLines | None = None) -> list[Match]:
    """Every signature that fits, in knowledge-base order."""
    out = []
    said = said or SaidLines(lines, ending)
    for sig in sigs:
        m = match_signature(sig, chains, lines, signals, ending, said)
        if m is not None:
            out.append(m)
    return out


GRAM = 3  # required literals are 3+ characters long (required_literals); a shorter one is not used
# A text this long is not cut into grams (a set of them would cost more than it saves).
LONG_TEXT = 1 << 16


def grams(text: str) -> set[tuple[str, ...]]:
    """Every GRAM-character piece of `text`, as a tuple of its characters (zipping the text with
    itself cuts a small log's pieces in half the time slicing takes): a literal is in it only if
    each of its pieces is."""
    return set(zip(*(text[i:] for i in range(GRAM)), strict=False))  # the shorter tails end it


class SignatureGates:
    """A piece of each of the literals one of which each signature's every match needs, in
    its exception messages or its lines: a signature none of whose pieces is in the evidence's
    text cannot match, and is passed over at the cost of one set test (trying each signature on
    each line took most of a small log's reading). Joining the texts can only add pieces, so a
    signature that matches is never passed over."""

    def __init__(self, sigs) -> None:
        from trainwatch.diagnostics.knowledge.derived import flush

        self.sigs = tuple(sigs)
        gates = tuple(_gate(sig) for sig in self.sigs)
        flush()  # the pieces found here are kept for the next process
        # Inverted: for each place, which signatures each piece lets through (a piece of the
        # evidence's text is looked up once, instead of every signature testing its own pieces).
        self._always = frozenset(i for i, gate in enumerate(gates) if gate is None)
        # A signature that can match only a raised exception (no line pattern) needs one of its
        # class names among the evidence's: one none of whose names was raised is passed over too.
        self._raised_only = frozenset(
            i for i, sig in enumerate(self.sigs) if sig.exception and not sig.line
        )
        self._by_piece: dict[str, dict[tuple[str, ...], list[int]]] = {}
        for i, gate in enumerate(gates):
            for where, keys in gate or ():
                for key in keys:
                    self._by_piece.setdefault(where, {}).setdefault(tuple(key), []).append(i)

    def candidates(self, chains, said: SaidLines) -> list[Signature]:
        """The signatures, in order, that this evidence does not rule out."""
        texts = {
            "message": lambda: "\n".join(e.message for c in chains for e in c.exceptions),
            "line": lambda: said.text(False),
            "at_end": lambda: said.text(True),
        }
        chosen = set(self._always)
        for where, by_piece in self._by_piece.items():
            text = texts[where]()
            if len(text) >= LONG_TEXT:  # too long to cut: anything gated here may match
                chosen.update(i for found in by_piece.values() for i in found)
                continue
            for piece in by_piece.keys() & grams(text):
                chosen.update(by_piece[piece])
        raised = {e.short_type for c in chains for e in c.exceptions}
        return [
            self.sigs[i]
            for i in sorted(chosen)
            if i not in self._raised_only or not self.sigs[i].raised_names.isdisjoint(raised)
        ]


def _said(lines: tuple[LogLine, ...]) -> str:
    """The lines' texts as `_match_line` tries them."""
    return "\n".join(text for line in lines for text in _tried(line))


def _tried(line: LogLine) -> tuple[str, ...]:
    """The texts of a line a line pattern is tried on: as cleaned, and whole where a capture's
    prefix was taken off."""
    return (line.text, line.whole) if line.capture is not None else (line.text,)


def _gate(sig: Signature) -> tuple[tuple[str, frozenset[str]], ...] | None:
    """Where (`message`, `line`, `at_end`) and by which pieces the signature can match; None
    when nothing rules it out (an exit signal alone, an exception's type alone, a pattern without
    required literals)."""
    if not (sig.exception or sig.message or sig.line):
        return None
    if sig.exception and not sig.message:
        return None
    sides = []
    for where, patterns in (
        ("message", sig.message),
        ("at_end" if sig.at_end else "line", sig.line),
    ):
        if not patterns:
            continue
        pieces = [cached_pieces(p.pattern) for p in patterns]
        if any(found is None for found in pieces):
            return None
        sides.append((where, frozenset(piece for found in pieces for piece in found)))
    return tuple(sides)


def cached_pieces(pattern: str) -> tuple[str, ...] | None:
    """The rare piece of each of the pattern's required literals, or None when it has none to
    look for by its pieces; kept in the knowledge cache (knowledge/derived.py)."""
    from trainwatch.diagnostics.knowledge.derived import remembered

    def pieces() -> list[str] | None:
        literals = cached_literals(pattern)
        return [rare_piece(lit) for lit in literals] if _pieced(literals) else None

    found = remembered("pieces", pattern, pieces)
    return None if found is None else tuple(found)


def _pieced(literals: tuple[str, ...] | None) -> bool:
    """Can these literals be looked for by their pieces?"""
    return literals is not None and min(map(len, literals)) >= GRAM


def rare_piece(literal: str) -> str:
    """The literal's GRAM characters least common in training logs (every piece of a literal is in
    a text that holds it; a rare one rules out most texts that do not)."""
    from trainwatch.diagnostics.read.prefilter import rarities

    ranks = rarities(literal)
    window = sum(ranks[:GRAM])
    best, at = window, 0
    for i in range(1, len(literal) - GRAM + 1):
        window += ranks[i + GRAM - 1] - ranks[i - 1]
        if window > best:
            best, at = window, i
    return literal[at : at + GRAM]


def _match_exception(sig: Signature, chains: tuple[ExceptionChain, ...]) -> Match | None:
    names = sig.raised_names
    for chain in chains:
        for depth, exc in enumerate(chain.exceptions):
            if names and (
                exc.short_type not in names
                or not any(type_matches(e, exc.type) for e in sig.exception)
            ):
                continue
            said = _first_match(sig.message, exc.message) if sig.message else None
            if sig.message and said is None:
                continue
            if sig.module_is_own_file and not _names_own_file(said, exc):
                continue
            if sig.raised_at and not _raised_at(sig, exc):
                continue
            if sig.raised_in and not _raised_in(sig, exc):
                continue
            source = chain.where
            text = exc_text(exc, chain)
            return Match(
                sig,
                "exception",
                (Cited(cited_kind(chain), _clip(text), source),),
                exc,
                chain,
                depth,
                chain.line or 0,
            )
    return None


def _first_match(patterns, message: str) -> re.Match[str] | None:
    """The first of the patterns' matches in the message (a plain loop: this runs for every
    signature with messages on every exception)."""
    for pattern in patterns:
        found = pattern.search(message)
        if found is not None:
            return found
    return None


def _raised_at(sig: Signature, exc: RaisedException) -> bool:
    """Does the source line of the innermost frame that shows one, or of the program's own deepest
    frame, match `raised_at`? A `raise` statement says nothing of what failed (a mapping's `raise
    KeyError(key)`): its caller's does; and where a library raised inside itself (json's decoder),
    the program's own call says what it was doing."""
    innermost = next(
        (f.code for f in reversed(exc.frames) if f.code and not f.code.startswith("raise")), None
    )
    own = next((f.code for f in reversed(exc.frames) if f.user and f.code), None)
    return any(code and p.search(code) for code in (innermost, own) for p in sig.raised_at)


def _raised_in(sig: Signature, exc: RaisedException) -> bool:
    """Does `raised_in` match the exception's innermost frame, written `<file>, in <function>` as a
    traceback names it? A `__getattr__` raises for whoever asked it (torch's Module, pandas'
    DataFrame): there its caller's frame is where the error was raised. An exception shown
    without its traceback has the empty place: `^$` matches it."""
    if not exc.frames:
        return any(p.search("") for p in sig.raised_in)
    frame = exc.frames[-1]
    if frame.function in _ASKED_FOR and len(exc.frames) > 1:
        frame = exc.frames[-2]
    place = f"{frame.file}, in {frame.function}"
    return any(p.search(place) for p in sig.raised_in)


_ASKED_FOR = {"__getattr__", "__getattribute__"}


def _names_own_file(said: re.Match[str] | None, exc: RaisedException) -> bool:
    """Is the top-level module the message names (its `module` group) a single file of the
    program's own: a frame of the traceback in `<name>.py`, or the path the message gives
    (`cannot import name 'x' from 'y' (/proj/y.py)`) outside the installed packages and the
    standard library? A package of the program's own (`llava.model`) is not asked: its
    `__init__` often hides a failed import of its own behind the missing name."""
    name = said.group("module") if said is not None else None
    if not name or "." in name:
        return False
    from trainwatch.diagnostics.read.frames import forward_slashes, is_user_file

    own = f"/{name}.py"
    if any(f.user and forward_slashes(f.file).endswith(own) for f in exc.frames):
        return True

    path = re.search(r"\(([^()]+)\)\s*$", exc.message)
    return path is not None and (
        ("/" + forward_slashes(path.group(1)).lstrip("/")).endswith(own)
        and is_user_file(path.group(1))
    )


def cited_kind(chain: ExceptionChain) -> str:
    """What a citation of the chain is: an exception, or a line of the log (an error line)."""
    return "log" if chain.is_error_line else "exception"


def exc_text(exc: RaisedException, chain: ExceptionChain) -> str:
    """An exception as a citation quotes it: `Type: message`; an error line as it was written."""
    if chain.is_error_line or not exc.message:
        return exc.message or exc.type
    return f"{exc.type}: {_headline(exc.message)}"


# PaddlePaddle's error layout (`FLAGS_call_stack_level=2`, and its native errors in general) puts
# the error under a C++ traceback: the message opens with blank lines and dashes, and what went
# wrong follows "Error Message Summary:" and a line of dashes.
_SUMMARY = re.compile(r"\nError Message Summary:\n(?:-+\n)?")


# Lines with neither a letter nor a digit that a message opens with: a banner over its text (nltk's
# `LookupError` opens with an empty line and a row of asterisks, which a citation quoted alone).
_BANNER = re.compile(r"(?:[^\w\n]*\n)+")


def _headline(message: str) -> str:
    """The part of a message that says what went wrong: the summary under a C++ traceback, the
    text under a banner."""
    found = _SUMMARY.search(message) if "Error Message Summary" in message else None
    if found:
        return message[found.end() :]
    banner = _BANNER.match(message)
    return message[banner.end() :].lstrip() if banner and banner.end() < len(message) else message


def _match_line(sig: Signature, patterns, lines: tuple[LogLine, ...]) -> Match | None:
    for line in lines:
        if any(p.search(text) for text in _tried(line) for p in patterns):
            return Match(
                sig,
                "line",
                (Cited("log", _clip(line.text.strip()), line.where),),
                order=line.number,
            )
    return None


def _raised_other(sig: Signature, found: Match, chains: tuple[ExceptionChain, ...]) -> bool:
    """Is the matched line a traceback's source line whose chain raised none of the signature's
    exception types? An `assert` line that raised a CUDA error surfaced another failure there."""
    said = found.cited[0].text
    for chain in chains:
        if any(f.code == said for exc in chain.exceptions for f in exc.frames):
            if not any(
                type_matches(t, exc.type) for exc in chain.exceptions for t in sig.exception
            ):
                return True
    return False


def _with_raised(found: Match, chains: tuple[ExceptionChain, ...]) -> Match:
    """A line that is an exception's own line (`Type: message`, as a traceback ends it) is evidence
    about that exception: the match carries it, for the culprit and the sample it was raised on."""
    said = found.cited[0].text
    for chain in chains:
        if chain.is_error_line:
            continue
        for depth, exc in enumerate(chain.exceptions):
            if exc.message and said in (
                _clip(exc_text(exc, chain)),
                _clip(f"{exc.short_type}: {exc.message}"),
            ):
                return replace(found, exception=exc, chain=chain, depth=depth)
    return found


def _order(cited: Cited) -> int:
    place = cited.place
    return place[1] if place is not None else 1 << 30


# A message whose first line announces what follows (`Error(s) in loading state_dict for M:`) or
# stops mid-sentence (`... requires the save and eval strategy to match, but found`) says it on the
# lines after: the evidence keeps that many of them.
ANNOUNCED_LINES = 3


def _clip(text: str, limit: int = 400) -> str:
    text = text.strip()
    lines = text.splitlines() or [text]
    first = lines[0]
    end = first.rstrip()[-1:]
    if end == ":" or end.isalnum():
        first = " ".join(
            [first.rstrip()] + [line.strip() for line in lines[1 : 1 + ANNOUNCED_LINES]]
        ).strip()
    return first if len(first) <= limit else first[: limit - 1] + "…"


def cached_literals(pattern: str) -> tuple[str, ...] | None:
    """`required_literals`, kept in the knowledge cache between runs (knowledge/derived.py)."""
    from trainwatch.diagnostics.knowledge.derived import remembered

    found = remembered("literals", pattern, lambda: required_literals(pattern))
    return None if found is None else tuple(found)  # the cache holds JSON lists


def required_literals(pattern: str) -> tuple[str, ...] | None:
    """Strings one of which every match of `pattern` contains, or None when no such set of 3+ chars
    exists.

    The log parser's pre-filter looks for these literally in big chunks of a log, so that a line
    a signature could match is never skipped without running the regex per line.
    """
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    found = _seq_literals(list(parsed))
    return found if found and min(map(len, found)) >= 3 else None


# Words on nearly every line of a training log: a literal holding one would make the pre-filter pass
# every progress line to the detailed parser, so a pattern's other literals are preferred.
COMMON_WORDS = ("loss", "Loss", "step", "Step", "epoch", "Epoch", "iter", "batch", "INFO", "train")


def _worth(option) -> tuple[bool, int]:
    """How good a literal set is for the pre-filter: no common word first, then the longest."""
    common = any(word in literal for literal in option for word in COMMON_WORDS)
    return (not common, min(map(len, option)))


def _seq_literals(items) -> tuple[str, ...] | None:
    """The best literal set of a sequence: runs of literals, multiplied out through small classes
    and branches.
    """
    best: tuple[str, ...] | None = None
    runs: list[str] = [""]

    def consider(option):
        nonlocal best
        if option and all(option) and (best is None or _worth(option) > _worth(best)):
            best = tuple(option)

    for op, arg in items:
        if op is sre_parse.LITERAL:
            runs = [r + chr(arg) for r in runs]
            continue
        if op is sre_parse.AT:  # zero-width (\b, ^, $): the literals on both sides still hold
            continue
        small = _small_alternatives(op, arg)
        if small is not None and len(runs) * len(small) <= 16:
            runs = [r + s for r in runs for s in small]
            continue
        consider(runs)
        runs = [""]
        if op is sre_parse.SUBPATTERN:
            consider(_seq_literals(list(arg[3])))
        elif op is sre_parse.BRANCH:
            options = [_seq_literals(list(alt)) for alt in arg[1]]
            if all(options):
                consider(tuple(s for o in options for s in o))
        elif op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT) and arg[0] >= 1:
            consider(_seq_literals(list(arg[2])))
    consider(runs)
    return best


def _small_alternatives(op, arg) -> list[str] | None:
    """`[Ll]` -> ['L', 'l']; `(?:nan|NaN)` -> ['nan', 'NaN']: alternatives that are pure literals,
    or None.
    """
    if op is sre_parse.IN and all(o is sre_parse.LITERAL for o, _ in arg) and len(arg) <= 4:
        return [chr(a) for _, a in arg]
    if op is sre_parse.SUBPATTERN and arg[1] == 0 and arg[2] == 0:
        inner = list(arg[3])
        if len(inner) == 1:
            return _small_alternatives(*inner[0])
        if all(o is sre_parse.LITERAL for o, _ in inner):
            return ["".join(chr(a) for _, a in inner)]
    if op is sre_parse.BRANCH:
        out = []
        for alt in arg[1]:
            alt = list(alt)
            if not all(o is sre_parse.LITERAL for o, _ in alt):
                return None
            out.append("".join(chr(a) for _, a in alt))
        return out if len(out) <= 4 else None
    return None
