"""`with trainwatch.watch(): ...`: a block of a script or notebook watched as `trainwatch run`
watches a program, and its report shown when the block fails.

What the block prints is read as it is written (sys.stdout and sys.stderr are teed, never
replaced: every byte still reaches them) by the same parsers and progress tracker a live run
uses (diagnostics/watch/observers.py), so tqdm bars, Keras and Lightning lines and `loss=` prints
give the position and the losses with no change to the code; `Watch.progress()` reports them
explicitly where nothing is printed. Memory is sampled by the run's monitor
(diagnostics/watch/monitor.py) on this process and its children (DataLoader workers). An
exception that leaves the block is read as the probe reads one (trainwatch/analysis.py), judged,
shown, and raised again: the block's behaviour never changes.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from trainwatch.diagnostics.evidence import ExitStatus
    from trainwatch.diagnostics.verdict import Diagnosis

ShowWhen = Literal["failure", "always", "never"]


class Watch:
    """A watched block. Use `trainwatch.watch()`; after the block, `diagnosis` holds its verdict."""

    def __init__(
        self,
        *,
        show: ShowWhen = "failure",
        capture_output: bool = True,
        interval: float = 0.5,
        signatures: Sequence[str] = (),
    ) -> None:
        if show not in ("failure", "always", "never"):
            raise ValueError(f"show must be 'failure', 'always' or 'never', not {show!r}")
        self.show: ShowWhen = show
        self.capture_output = capture_output
        self.interval = interval
        self.signatures = tuple(os.fspath(s) for s in signatures)
        self.diagnosis: Diagnosis | None = None
        self._tees: list[_Tee] = []
        self._started = 0.0
        self._monitor: Any = None
        self._observers: Any = None
        self._output: Any = None  # the OutputFeed the block's output goes through to the parsers

    def __enter__(self) -> Watch:
        from trainwatch.diagnostics.knowledge import user_signature_files
        from trainwatch.diagnostics.watch.feed import OutputFeed
        from trainwatch.diagnostics.watch.monitor import Monitor
        from trainwatch.diagnostics.watch.observers import OutputObservers

        files = tuple(str(f) for f in user_signature_files()) + self.signatures
        self._observers = OutputObservers(files)
        # parsed in a thread of its own: a print in the block never waits for the parsers
        self._output = OutputFeed([self._observers])
        if self.capture_output:
            self._tees = [_Tee("stdout", self), _Tee("stderr", self)]
            sys.stdout, sys.stderr = self._tees
        self._started = time.time()
        self._monitor = Monitor.start(os.getpid(), self.interval)
        return self

    def progress(
        self,
        *,
        step: int | None = None,
        steps: int | None = None,
        epoch: int | None = None,
        epochs: int | None = None,
        loss: float | None = None,
    ) -> None:
        """Say where the loop is, and its training loss, where the block prints neither.

        Read as one line of output (`epoch 2/10 step 40/100 loss 0.31`) by the progress tracker,
        so a NaN or infinite loss, a stop before the last step, and the loss curve are judged as
        in a run's output; the line is not printed."""
        parts = []
        if epoch is not None:
            parts.append(f"epoch {epoch}" + (f"/{epochs}" if epochs else ""))
        if step is not None:
            parts.append(f"step {step}" + (f"/{steps}" if steps else ""))
        if loss is not None:
            parts.append(f"loss {float(loss)!r}")
        if parts:
            self._feed("stdout", " ".join(parts) + "\n")

    def _feed(self, stream: str, text: str) -> None:
        """Hand text the block wrote to `stream` ("stdout" or "stderr") to the parsers."""
        if self._output is not None and stream in ("stdout", "stderr"):
            self._output.put(stream, text.encode("utf-8", "replace"))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        try:
            self.diagnosis = self._judge(exc)
        finally:
            self._restore_streams()
        ended, category = self.diagnosis.exit, self.diagnosis.verdict.category
        # A block that ran to its end can still have failed quietly: a NaN loss, a loop cut short.
        failed = ended is None or ended.status != 0 or category not in ("completed", "unknown")
        if self.show == "always" or (self.show == "failure" and failed):
            from trainwatch.display import show

            show(self.diagnosis)
        return False  # the exception, if any, goes on as if the block were not watched

    def _judge(self, exc: BaseException | None) -> Diagnosis:
        from trainwatch.analysis import diagnosis_of, exception_evidence
        from trainwatch.diagnostics.judge.classify import classify

        memory = self._monitor.stop()
        self._output.wait()
        observers = self._observers
        observers.finish()
        exit, exception = _ending(exc)
        evidence = exception_evidence(
            exception,
            exit=exit,
            log=observers.log_facts(),
            memory=memory,
            progress=observers.progress_facts(),
            notes=(memory.notes if memory is not None else ())
            + ((self._output.note(),) if self._output.note() else ()),
        )
        verdict = classify(evidence, observers.knowledge())
        started = datetime.datetime.fromtimestamp(self._started, datetime.UTC)
        return diagnosis_of(
            evidence,
            verdict,
            started_at=started.isoformat(timespec="seconds"),
            duration_s=time.time() - self._started,
        )

    def _restore_streams(self) -> None:
        """Put back the streams the block had, unless the block replaced ours with its own."""
        if not self._tees:
            return
        out, err = self._tees
        if sys.stdout is out:
            sys.stdout = out.stream
        if sys.stderr is err:
            sys.stderr = err.stream
        self._tees = []


def watch(
    *,
    show: ShowWhen = "failure",
    capture_output: bool = True,
    interval: float = 0.5,
    signatures: Sequence[str] = (),
) -> Watch:
    """Watch a block of code: `with trainwatch.watch() as w: train()`.

    - `show`: when the report is shown (HTML in Jupyter, the terminal report on stderr
      elsewhere): "failure" (an exception left the block, or the verdict names a quiet failure
      such as a NaN loss), "always", or "never".
    - `capture_output`: read what the block prints (progress bars, loss lines, warnings).
    - `interval`: seconds between memory samples.
    - `signatures`: extra signature files (docs/signatures.md).

    The block's exception is never swallowed. `w.diagnosis` holds the verdict afterwards, and
    `w.progress(step=..., loss=...)` reports progress the block does not print.
    """
    return Watch(show=show, capture_output=capture_output, interval=interval, signatures=signatures)


def _ending(exc: BaseException | None) -> tuple[ExitStatus | None, BaseException | None]:
    """How the block ended, as a process would have: a clean end and `sys.exit(n)` are exits;
    any other exception is the evidence, with no exit status (the process goes on)."""
    from trainwatch.diagnostics.evidence import ExitStatus

    if exc is None:
        return ExitStatus(code=0, signal=None, status=0), None
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return ExitStatus(code=code, signal=None, status=code), (exc if code else None)
    return None, exc


class _Tee:
    """A text stream that writes through to the one it replaces, and hands a copy to the Watch.

    Everything but `write` and `writelines` is the original stream's (fileno, isatty, encoding,
    Jupyter's own methods), so code that inspects the stream sees what it would have seen."""

    def __init__(self, name: str, watch: Watch) -> None:
        self.name = name
        self.stream = getattr(sys, name)
        self.watch = watch

    def write(self, text: str) -> int:
        written = self.stream.write(text)  # the user's output first, whatever happens after
        try:
            self.watch._feed(self.name, text)
        except Exception:
            pass
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
