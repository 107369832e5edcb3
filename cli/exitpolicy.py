"""The exit policy every command shares: the program's status passes through, `--fail-on` may fail a
run that exited 0, and what counts as a failure for CI reports."""

from __future__ import annotations

import re

from trainwatch.diagnostics.errors import UsageError
from trainwatch.diagnostics.verdict import CATEGORIES, Diagnosis

# What trainwatch exits with when the program exited 0 but its verdict is one `--fail-on` names
# (docs/ci.md). 3 is free: 1 and 2 are the usual failure and usage codes, 126/127/70 and 128+N are
# taken (docs/index.md).
EXIT_FAIL_ON = 3


def parse_fail_on(text: str | None) -> frozenset[str]:
    """`"numerical,early-exit"` -> the categories (or `category/subtype`s) that fail a run."""
    if text is None:
        return frozenset()
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise UsageError(f"--fail-on: no category given (one or more of: {', '.join(CATEGORIES)})")
    for name in names:
        category, _, subtype = name.partition("/")
        if category not in CATEGORIES:
            raise UsageError(
                f"--fail-on: unknown category {name!r} (one of: {', '.join(CATEGORIES)})"
            )
        if "/" in name and not _SUBTYPE_NAME.fullmatch(subtype):
            raise UsageError(
                f"--fail-on: {name!r} is no subtype (written category/name, as the reports show "
                "it: `numerical/nan-loss`)"
            )
    return names


_SUBTYPE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def fails_policy(diagnosis: Diagnosis, fail_on: frozenset[str]) -> bool:
    """Does the verdict fall under `--fail-on` (by category, or by its exact subtype)?"""
    v = diagnosis.verdict
    return v.category in fail_on or (v.subtype is not None and v.subtype in fail_on)


def final_status(diagnosis: Diagnosis, fail_on: frozenset[str] = frozenset()) -> int:
    """What trainwatch exits with: the program's status, or EXIT_FAIL_ON when it exited 0 (or, for
    a saved log, whatever it did) and the verdict is one `--fail-on` names. `explain` otherwise
    exits 0."""
    if diagnosis.exit is not None:
        status = diagnosis.exit.status
    else:
        status = 0 if not diagnosis.command else 1
    if status == 0 and stopped_for_nan(diagnosis):
        return EXIT_FAIL_ON  # it caught trainwatch's interrupt and exited 0: still no success
    if status == 0 and fail_on and fails_policy(diagnosis, fail_on):
        return EXIT_FAIL_ON
    return status


def stopped_for_nan(diagnosis: Diagnosis) -> bool:
    """Did trainwatch stop the run for a non-finite loss (`--on-nan stop`)? A saved report holds it
    in its `nan_stop` section (`trainwatch report` must fail the same CI job the run failed)."""
    saved = diagnosis.sections.get("nan_stop")
    return diagnosis.evidence.nan_stop is not None or isinstance(saved, dict)


def policy_note(diagnosis: Diagnosis, status: int) -> str | None:
    """Why trainwatch exits with another status than the program's, in words; None when not."""
    program = diagnosis.exit.status if diagnosis.exit is not None else None
    if program is None or status == program:
        return None
    if stopped_for_nan(diagnosis):
        return (
            f"trainwatch exits {status}: it stopped the run for a non-finite loss (--on-nan stop) "
            "and the program then exited 0"
        )
    return f"trainwatch exits {status}: --fail-on names this verdict"


def failed(diagnosis: Diagnosis, status: int) -> bool:
    """A failure for CI reports: trainwatch exits non-zero, or a saved log shows a run that did not
    complete."""
    if status != 0:
        return True
    return diagnosis.exit is None and diagnosis.verdict.category != "completed"
