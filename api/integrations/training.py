"""What every framework callback drives: a `Watch` over the training, progress and losses from the
framework's own counters, and the diagnosis handed to the trackers on an exception, a non-finite
loss, or the end of training.

The Lightning, Hugging Face and Keras callbacks (lightning.py, huggingface.py, keras.py) only
translate their framework's hooks into `begin`, `step`, `fail` and `end`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainwatch.diagnostics.verdict import Diagnosis
    from trainwatch.watching import ShowWhen, Watch

TRACKERS = ("wandb", "tensorboard")


class ObservedCallback:
    """What the three framework callbacks share: their observer's verdict, and why it stopped the
    fit (read by the probe of a run under `trainwatch run`: FitStopped.reason)."""

    observer: TrainingObserver

    @property
    def diagnosis(self) -> Diagnosis | None:
        """The last verdict, once the fit failed, met a NaN, or ended."""
        return self.observer.diagnosis

    @property
    def stopped_for(self) -> str | None:
        """NAN_STOP once `stop_on_nan` stopped the fit, else None."""
        return self.observer.stopped_for


class TrainingObserver:
    """One training run, watched from inside the framework."""

    def __init__(
        self,
        *,
        trackers: Sequence[str] = TRACKERS,
        show: ShowWhen = "failure",
        stop_on_nan: bool = False,
        tensorboard_dir: str | None = None,
        interval: float = 0.5,
    ) -> None:
        unknown = set(trackers) - set(TRACKERS)
        if unknown:
            raise ValueError(f"unknown trackers {sorted(unknown)}: choose from {TRACKERS}")
        self.trackers = tuple(trackers)
        self.show = show
        self.stop_on_nan = stop_on_nan
        self.tensorboard_dir = tensorboard_dir
        self.interval = interval
        self.diagnosis: Diagnosis | None = None
        self.tensorboard_writer: Any = None  # the framework's own SummaryWriter, when it has one
        self.wandb_run: Any = None  # the framework's own W&B run, when it has one
        self._watch: Watch | None = None
        self.epochs: int | None = None
        self.steps: int | None = None  # the steps of an epoch, when the framework knows them
        self._hook: Any = None  # our sys.excepthook while training runs, when asked for
        self.stopped_for: str | None = None  # NAN_STOP once it stopped the fit

    @property
    def running(self) -> bool:
        return self._watch is not None

    def begin(
        self, epochs: int | None = None, steps: int | None = None, uncaught: bool = False
    ) -> None:
        """Training starts: watch memory and progress from here (the framework's counters say
        where the loop is; its printed output is left alone). With `uncaught`, an exception that
        ends the program is judged before Python prints it: for frameworks with no exception hook
        of their own (Hugging Face, Keras)."""
        from trainwatch.watching import Watch

        if self._watch is not None:
            return
        self.diagnosis = None
        self.epochs, self.steps = epochs, steps
        self._watch = Watch(show="never", capture_output=False, interval=self.interval)
        self._watch.__enter__()
        if uncaught:
            self._hook = _chained_hook(self, sys.excepthook)
            sys.excepthook = self._hook

    def step(
        self,
        step: int | None = None,
        epoch: int | None = None,
        loss: float | None = None,
        stop: Callable[[], None] | None = None,
    ) -> None:
        """A step ended with this training loss. A NaN or infinite loss is judged at once (and
        `stop` asks the framework to stop, with `stop_on_nan`)."""
        if self._watch is None:
            return
        self._watch.progress(
            step=step, steps=self.steps, epoch=epoch, epochs=self.epochs, loss=loss
        )
        if loss is not None and not math.isfinite(loss):
            self._finish(None)
            if self.stop_on_nan and stop is not None:
                from trainwatch.diagnostics.watch.probe.records import NAN_STOP

                self.stopped_for = NAN_STOP
                stop()

    def fail(self, exception: BaseException) -> Diagnosis | None:
        """Training raised `exception`: judge it and hand the verdict on."""
        return self._finish(exception)

    def end(self) -> Diagnosis | None:
        """Training ended without an exception."""
        return self._finish(None)

    def _finish(self, exception: BaseException | None) -> Diagnosis | None:
        if self._hook is not None and sys.excepthook is self._hook:
            sys.excepthook = self._hook.previous
        self._hook = None
        watch, self._watch = self._watch, None
        if watch is None:
            return self.diagnosis
        exc_type = None if exception is None else type(exception)
        tb = None if exception is None else exception.__traceback__
        watch.__exit__(exc_type, exception, tb)
        self.diagnosis = watch.diagnosis
        if self.diagnosis is not None:
            self._hand_on(self.diagnosis, failed=exception is not None)
        return self.diagnosis

    def _hand_on(self, diagnosis: Diagnosis, failed: bool) -> None:
        """To the trackers, then to the user's eyes when it failed (or always, if asked)."""
        from trainwatch.integrations.trackers import to_tensorboard, to_wandb

        if "wandb" in self.trackers:
            to_wandb(diagnosis, self.wandb_run)
        if "tensorboard" in self.trackers:
            to_tensorboard(diagnosis, self.tensorboard_dir, self.tensorboard_writer)
        category = diagnosis.verdict.category
        quiet_failure = category not in ("completed", "unknown")
        if self.show == "always" or (self.show == "failure" and (failed or quiet_failure)):
            from trainwatch.display import show

            show(diagnosis)


def _chained_hook(observer: TrainingObserver, previous: Any) -> Any:
    """A `sys.excepthook` that judges the exception, then lets the previous hook print it."""

    def hook(exc_type: Any, value: BaseException, tb: Any) -> Any:
        try:
            observer.fail(value)
        except Exception:  # trainwatch's failure must never hide the program's own
            pass
        return previous(exc_type, value, tb)

    hook.previous = previous  # type: ignore[attr-defined]
    return hook
