"""Every subtype a verdict can carry, to check the ones a user names (`--fail-on`)."""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainwatch.diagnostics.knowledge import Knowledge

# Subtypes the judges write in their code rather than read from the knowledge files: every
# `"category/name"` literal of diagnostics/ and cli/ (tests/unit/test_subtypes.py holds the list to
# the source).
JUDGED = (
    "code/graph-break",
    "code/inplace-autograd",
    "code/missing-local-module",
    "code/module-shadowed",
    "code/python-error",
    "code/shape-mismatch",
    "code/syntax-error",
    "code/wrong-call-arguments",
    "completed/early-stopping",
    "completed/finished",
    "data/empty-sample",
    "data/file-changed",
    "data/nan-input",
    "data/sample-error",
    "distributed/barrier-timeout",
    "distributed/collective-mismatch",
    "distributed/collective-timeout",
    "distributed/connection-lost",
    "distributed/peer-failed",
    "distributed/rendezvous",
    "distributed/uneven-work",
    "early-exit/backgrounded",
    "early-exit/skipped-shutdown",
    "hang/collective",
    "interrupted/time-limit",
    "library/missing-package",
    "library/native-crash",
    "library/package-error",
    "library/too-many-open-files",
    "library/version-incompat",
    "numerical/anomaly",
    "oom/gpu",
    "oom/gpu-occupied",
    "oom/host",
    "oom/shm",
)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def known_subtypes(knowledge: Knowledge) -> frozenset[str]:
    """The signatures' and phrases' subtypes, the quiet-stop rules' (their placeholders filled
    with every value they take), the judges' own, a stop signal's, and the word layer's."""
    from trainwatch.diagnostics.categories import CATEGORIES
    from trainwatch.diagnostics.judge.classify import STOP_SIGNALS
    from trainwatch.diagnostics.judge.quiet import NAN_KINDS, rules
    from trainwatch.diagnostics.watch.stall import WAIT_KINDS

    fills = {
        "wait_kind": WAIT_KINDS,
        "cut_wait": (*WAIT_KINDS, "no-progress"),
        "nan_kind": NAN_KINDS,
    }
    known = {s.subtype for s in knowledge.signatures if s.subtype}
    known.update(JUDGED)
    known.update(f"interrupted/{name.lower()}" for name in STOP_SIGNALS)
    known.update(f"{category}/error-words" for category in CATEGORIES)
    for rule in rules()[0]:
        if rule.subtype is None:
            continue
        names = _PLACEHOLDER.findall(rule.subtype)
        if not names:
            known.add(rule.subtype)
        for name in names:
            for value in fills.get(name, ()):
                known.add(rule.subtype.replace("{" + name + "}", value))
    return frozenset(known)


def unknown_subtypes(names: frozenset[str], knowledge: Knowledge) -> tuple[str, ...]:
    """For each `category/name` no verdict can carry: a sentence naming it, with the closest
    subtypes of its category."""
    known = known_subtypes(knowledge)
    said = []
    for name in sorted(n for n in names if "/" in n and n not in known):
        category = name.partition("/")[0]
        near = difflib.get_close_matches(
            name, sorted(k for k in known if k.startswith(category + "/")), n=3, cutoff=0.5
        )
        hint = f" (did you mean {' or '.join(near)}?)" if near else ""
        said.append(f"{name} is no subtype trainwatch gives{hint}")
    return tuple(said)
