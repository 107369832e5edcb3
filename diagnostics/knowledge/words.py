"""The third layer of knowledge: the category an error's words lean to, where no signature or phrase
family knows the error, learnt from the development part of the corpus and kept as counts in
words.json (built by bench/words.py; corpus/README.md says what may be learnt from)."""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from trainwatch.diagnostics.evidence import CITED_CHARS, ExceptionChain

TABLE = Path(__file__).with_name("words.json")
# A word of one report alone is that report's, not its category's.
MIN_CASES = 2
# Additive smoothing of each word's share in a category: chosen by five-fold cross-validation on
# the development part alone (0.25: 71% of its error lines right, against 69% at 0.5 and 66% at 1).
SMOOTHING = 0.25
# Fewer known words than this (beyond `error`) say too little: the absent words would decide.
MIN_WORDS = 2
# At or below this share of the model's belief the words lean to no category: the answer stays
# unknown. Five-fold on the development part's error lines (twenty-seventh session), the model's
# category was right for 36% of the lines it gave 0.5-0.6 of its belief, 30% at 0.4-0.5 (too
# close to a guess among the categories such lines are split between), 40% at 0.6-0.7.
LEANS_FROM = 0.5
# Too common in error messages to tell one category from another.
_STOP = frozenset(
    "the and for not was are with this that you your have has from into when been its can will "
    "use used using".split()
)
# Words every error holds: they count, but say nothing to a reader of why the error leans.
_NOT_SHOWN = frozenset(("error", "exception"))
_WORD = re.compile(r"[A-Za-z][A-Za-z_]{2,}")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


def tokens(text: str) -> frozenset[str]:
    """The words of an error line: lower-cased, class names split (`ModuleNotFoundError` is
    module, not, found, error), numbers, paths' punctuation and short words left out."""
    found = set()
    for word in _WORD.findall(_CAMEL.sub(" ", text)):
        for part in word.lower().split("_"):
            if len(part) >= 3 and part not in _STOP:
                found.add(part)
    return frozenset(found)


def ending_chain(chains: tuple[ExceptionChain, ...]) -> ExceptionChain | None:
    """The chain the run ended on: the last one; but where the probe saw an exception end the
    run, a line in the program's own words read from the output is not it (read from a stdout
    apart from stderr, a framework's `[ERROR]` line printed before it raised came last and hid
    the exception: a real PaddlePaddle run)."""
    if any(c.origin == "probe" for c in chains):
        raised = [c for c in chains if not c.is_error_line]
        if raised:
            return raised[-1]
    return chains[-1] if chains else None


def error_line(chains: tuple[ExceptionChain, ...]) -> str | None:
    """The error the run ended on, as the verdict cites it: the ending chain's final exception,
    `Type: message` (or an error line as written), its first line."""
    chain = ending_chain(chains)
    if chain is None:
        return None
    from trainwatch.diagnostics.knowledge.matcher import exc_text

    lines = exc_text(chain.final, chain).splitlines()
    return lines[0][:CITED_CHARS] if lines else None


# What to do when only the words of the error point somewhere: a category's first checks.
ADVICE: dict[str, tuple[str, ...]] = {
    "data": (
        "Check the input the error names (a file, a sample, a column, a label): does it exist, "
        "open, and hold what the code expects? Scan the dataset once for the bad items.",
    ),
    "oom": ("Lower the batch size or the model's size, and watch the memory the run uses.",),
    "numerical": (
        "Find the first step where a value went NaN or Inf; lower the learning rate, clip "
        "gradients.",
    ),
    "code": (
        "Open the culprit line and check the call or value the message names against what it "
        "expects (its arguments, shapes, types, configuration).",
    ),
    "library": (
        "Compare the installed versions of the packages the error comes from (`pip list`) with the "
        "ones the project was written for, and search the package's issue tracker for the message.",
    ),
    "distributed": (
        "Look at every rank's log, earliest failure first: one rank's own error is usually the "
        "cause; check that the processes can reach each other.",
    ),
    "hardware": ("Check the machine's kernel log and the device's health (nvidia-smi -q).",),
    "interrupted": ("Find what stopped the run: a person, a scheduler's limit, a preemption.",),
    "hang": ("Dump the stacks of the stuck processes (py-spy dump) to see where they wait.",),
}


@dataclass(frozen=True)
class Leaning:
    """Where an error's words lean: the category, the model's share of belief in it, and the words
    that weighed most for it."""

    category: str
    share: float
    words: tuple[str, ...]


class WordModel:
    """A Bernoulli naive Bayes model over the words of error lines: for each category, how many of
    its cases there were and how many of them held each word."""

    def __init__(self, cases: dict[str, int], holding: dict[str, dict[str, int]]) -> None:
        self._total = sum(cases.values())
        self._vocabulary = frozenset(w for counts in holding.values() for w in counts)
        # A line's score for a category is the score of a line with none of the vocabulary, plus,
        # for each word it holds, log(p) - log(1 - p): worked out once here, so that a line costs
        # its own words rather than the whole vocabulary.
        self._absent: dict[str, float] = {}
        self._present: dict[str, dict[str, float]] = {}
        self._turn: dict[str, dict[str, float]] = {}
        for category, n in cases.items():
            counts = holding.get(category, {})
            absent = math.log(n / self._total) if self._total else 0.0
            present, turn = {}, {}
            for word in self._vocabulary:
                p = (counts.get(word, 0) + SMOOTHING) / (n + 2 * SMOOTHING)
                absent += math.log(1 - p)
                present[word] = math.log(p)
                turn[word] = math.log(p) - math.log(1 - p)
            self._absent[category] = absent
            self._present[category] = present
            self._turn[category] = turn

    @classmethod
    def from_table(cls, table: dict) -> WordModel:
        return cls(table["cases"], table["holding"])

    def lean(self, text: str) -> Leaning | None:
        """The category the words of `text` lean to, or None when it holds fewer than MIN_WORDS
        known words or no category has more than LEANS_FROM of the belief."""
        present = tokens(text) & self._vocabulary
        if len(present - _NOT_SHOWN) < MIN_WORDS or not self._total:
            return None
        scores = {
            category: absent + sum(self._turn[category][w] for w in present)
            for category, absent in self._absent.items()
        }
        best = max(scores, key=lambda c: scores[c])
        top = scores[best]
        share = 1 / sum(math.exp(s - top) for s in scores.values())
        if share <= LEANS_FROM:  # an even split leans to neither
            return None
        # the words that set this category apart most from the others, on average
        others = [c for c in scores if c != best]

        def lift(word: str) -> float:
            weights = self._present  # each word's log-share per category (not the line's words)
            return weights[best][word] - sum(weights[c][word] for c in others) / len(others)

        shown = [w for w in present if w not in _NOT_SHOWN] or list(present)
        # ties broken by the word itself: a set's order changes from one process to the next
        said = tuple(sorted(shown, key=lambda w: (-lift(w), w))[:3])
        return Leaning(best, share, said)


def count(lines: Iterable[tuple[str, str]]) -> dict:
    """The table of a model, from (error line, category) pairs: each category's cases, and for
    each word held by MIN_CASES cases or more, how many of each category's cases held it."""
    pairs = [(tokens(line), category) for line, category in lines]
    seen = Counter(word for words, _ in pairs for word in words)
    cases = Counter(category for _, category in pairs)
    holding: dict[str, Counter] = {category: Counter() for category in cases}
    for words, category in pairs:
        holding[category].update(w for w in words if seen[w] >= MIN_CASES)
    return {
        "cases": dict(sorted(cases.items())),
        "holding": {c: dict(sorted(holding[c].items())) for c in sorted(holding)},
    }


@functools.cache
def model() -> WordModel | None:
    """The built-in model, or None where its table is missing or unreadable (the other layers
    answer alone)."""
    try:
        return WordModel.from_table(json.loads(TABLE.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
