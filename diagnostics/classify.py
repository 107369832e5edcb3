"""Evidence -> verdict: the root cause, its cascades, how sure we are, and the alternatives."""

from __future__ import annotations

from .evidence import Evidence
from .verdict import Cited, Verdict

# Signals a person or a scheduler sends on purpose to stop a run.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def classify(evidence: Evidence, signatures: object | None = None) -> Verdict:
    """Judge the evidence. For now the exit status alone; the knowledge base plugs in here."""
    status = evidence.exit
    if status is None:
        return Verdict("unknown", None, 0.2, "The log does not show how the run ended.")
    exit_cited = Cited("exit", _describe_exit(status.code, status.signal), "waitpid")
    if status.signal in STOP_SIGNALS:
        return Verdict("interrupted", f"interrupted/{status.signal.lower()}", 0.9,
                       f"The run was stopped by {status.signal}.", evidence=(exit_cited,))
    if status.code == 0:
        return Verdict("completed", None, 0.6, "The run exited with status 0.", evidence=(exit_cited,))
    if status.signal is not None:
        return Verdict("unknown", None, 0.3,
                       f"Killed by {status.signal}; cause not established.", evidence=(exit_cited,))
    return Verdict("unknown", None, 0.3,
                   f"Exited with status {status.code}; cause not established.", evidence=(exit_cited,))


def _describe_exit(code: int | None, signal: str | None) -> str:
    return f"killed by {signal}" if signal else f"exit status {code}"
