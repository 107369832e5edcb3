"""Training progress and losses followed from the child's output: where the loop was, and whether it
finished.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trainwatch.diagnostics.evidence import CITED_CHARS, LogLine
from trainwatch.diagnostics.read.tracebacks import is_frame_line
from trainwatch.diagnostics.watch.stall import StallFacts

__all__ = ["ProgressFacts", "ProgressPosition", "ProgressTracker", "StallFacts", "nonfinite_name"]

# How many loss samples are kept; beyond this the series is thinned to every other sample (bounded
# memory).
LOSS_SAMPLES = 512

# Plain substring tests (on the lowered line) decide which patterns a line goes through: most lines
# of a long log fail them all, and `in` costs a fraction of what one regex search does.
_INF_WORD = re.compile(r"\binf\b")  # "inf" alone, not inside "info" (which most log lines hold)
# tqdm (and Lightning's tqdm) bars: `desc: 37%|███▋ | 37/100 [00:01<00:02, 30.1it/s, loss=0.1]`.
# Matched from just after the `%|` that every bar has; the description is what comes before the
# percentage.
_BAR_TAIL = re.compile(r"[^|]*\|\s*(?P<n>\d+(?:\.\d+)?[kMG]?)/(?P<total>\d+(?:\.\d+)?[kMG]?)")
_BAR_DESC = re.compile(r"[\s:]*\d{1,3}$")
# The values a bar shows after its rate, as the program chose them (`21.7it/s, DF=nan, G=nan]`): a
# NaN there is a value gone NaN whatever its name (an infinity may be a `best=inf` not yet set).
_BAR_POSTFIX = re.compile(r"%\|.*?(?:it/s|s/it)\s*,")
# Keras 2 (`12/100 [====>...] - ETA`) and Keras 3 (`12/100 ━━━━━━━ 1s 3ms/step`) step lines, and
# the one line an epoch ends with under `verbose=2` (`100/100 - 4s - loss: 0.29`, Keras 3's
# `100/100 - 4s - 2ms/step - loss: 0.29`).
_KERAS_STEP = re.compile(r"^\s*(?P<n>\d+)/(?P<total>\d+) (?:\[[=>.]*\]|[━─]+|- \d+m?s\b)")
# `Epoch 3/10`, `epoch: 3/10`, `[epoch 1/10]`, `Epoch [3/10]`, `Epoch 3 of 10`; never glued to a
# word or a number before it (Keras sometimes glues `- loss: 0.24Epoch 1/1000` onto a line: that is
# not an epoch).
# (`the best epoch: 1`, Keras' EarlyStopping restoring its weights, is a summary: no epoch begun)
# A printed dict's key (`{'epoch': 0, 'loss': nan}`) is one too, but not the Hugging Face Trainer's
# fractional `'epoch': 0.25`, which counts epochs done, not the epoch the loop is in.
_EPOCH = re.compile(
    r"(?<![\w.-])(?<!per )(?<![Bb]est )[Ee]poch(?P<quoted>['\"])?\s*[:=]?\s*\[?\s*(?P<n>\d+)"
    r"(?(quoted)(?![.\d]))"
    r"\s*(?:(?:/|\bof\b)\s*(?P<total>\d+))?",
    re.ASCII,
)
# A plural with no total (`scheduler steps 500`, `batches 32`) is a count, not where the loop is (a
# real run's header was read as step 500).
_STEP = re.compile(
    r"(?<![\w./])(?P<kind>[Ss]tep|[Ii]ter(?:ation)?|[Bb]atch)(?P<plural>es|s)?"
    r"['\"]?\s*[:=#]?\s*\[?\s*(?P<n>\d+)"
    r"(?:\s*(?:/|\bof\b)\s*(?P<total>\d+))?",
    re.ASCII,
)
# Values of metrics: `loss=0.12`, `loss: nan`, `train_loss_step=nan`, `'loss': 1.23`, `Loss 0.5`,
# `loss is nan`, `loss = tensor(nan, grad_fn=...)`, `val/acc: nan`, `eval-rmse:nan`, Lightning's
# padded `loss=nan.0`, PaddlePaddle's `loss: [nan]`. The name is read whole, so validation and
# per-epoch losses can be told apart from the training loss.
_VALUE = (
    r"(?:\s*[:=]\s*|\s+(?:is|was|became|=)\s+|\s+)(?:tensor\(|\[)?['\"]?"
    r"(?P<value>[-+]?(?:(?:nan|NaN|NAN|inf|Inf|INF|infinity|Infinity)(?:\.0+)?|"
    r"\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))(?![\da-z_]|\.\d)"
)
# TensorFlow 1 tutorials and the code grown from them call the loss `cost` (`Epoch: 3 cost= nan`);
# a time's or a reader's cost (`time cost: 46.9`, `reader_cost: 0.0`) is no loss. A loss may carry
# its step before the value: `Loss at step 300 : nan`, `train_loss[ 30 ]: nan`.
_LOSS = re.compile(
    r"(?P<name>[\w./\-]*(?:[Ll]oss|LOSS)[\w./\-]*|(?<![\w.\-])(?<![Tt]ime )(?<!data )[Cc]ost|COST)"
    r"['\"]?(?:\[\s*\d+\s*\]|\s+(?:at|@)\s+(?:step|iter(?:ation)?|epoch|batch)\s*\d+)?" + _VALUE
)
# A group of a loss's terms, each a name and its value: `[Losses: x 0.31, y 0.28, cls nan, total
# nan]` (older YOLO ports and other hand-written loops). The group's `total` is the loss; a term
# that is not finite makes the total so too.
_TERM_NAME = r"[A-Za-z_]\w*"
_TERM_VALUE = r"[-+]?(?:nan|NaN|inf|Inf|\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\b"
_TERM = rf"{_TERM_NAME}\s+{_TERM_VALUE}"
_LOSS_TERMS = re.compile(rf"\b(?:[Ll]osses|LOSSES)\s*:\s*\[?(?P<terms>{_TERM}(?:\s*,\s*{_TERM})+)")
_LOSS_TERM = re.compile(rf"(?P<name>{_TERM_NAME})\s+(?P<value>{_TERM_VALUE})")
# Any metric's non-finite value: `val/acc: nan`, `eval-rmse:nan`, `grad_norm': nan`; a ranking
# metric at a cut-off as recommenders and retrieval write it: `recall@10=nan`, `ndcg@5: nan`.
_NONFINITE = re.compile(
    r"(?P<name>[A-Za-z_][\w./\-]*(?:@\w+)?)['\"]?(?:\s*[:=]\s*|\s+(?:is|was|became)\s+)['\"]?"
    r"(?P<value>[-+]?(?:nan|NaN|NAN|inf|Inf|INF|infinity|Infinity))(?![\da-z_.])"
)
# ... or with a space alone, under a name written as an identifier (`val_macro_recall nan`,
# `train/acc nan`): a word of prose before `nan` has no `_` or `/`; or under a metric's own
# abbreviation (`train mse inf`, a real run's regression loop)
_NONFINITE_SPACED = re.compile(
    r"(?<![\w./\-])(?P<name>[A-Za-z][\w.\-]*[_/][\w./\-]*|(?:r?mse|mae|nll|ppl|acc|auc|f1)"
    r"|[A-Za-z]\w*@\w+)\s+"
    r"(?P<value>[-+]?(?:nan|NaN|NAN|inf|Inf|INF|infinity|Infinity))(?![\da-z_.])"
)
NAN_REPEATS = 3  # lines on which a name no metric's words know was printed NaN
MAX_NAN_NAMES = 64  # such names kept count of
# The gradients' norm as trainers print it (`'grad_norm': 'inf'`, `gnorm=nan`, `total_norm: 3.1`,
# `grad_norm nan`).
_GRAD_NORM = re.compile(
    r"(?i)(?<![\w])(?:grad(?:ient)?[_ /\-]?norm|gnorm|total_norm)['\"]?(?:\s*[:=]\s*|\s+)['\"]?"
    r"(?P<value>[-+]?(?:nan|inf(?:inity)?|\d+(?:\.\d*)?(?:e[-+]?\d+)?))(?![\w.])"
)
# Non-finite gradient norms in a row, the last ones printed, that say the gradients stayed so: a
# mixed-precision run's loss scaler skips a step or a few with an overflowing norm and goes on.
NONFINITE_NORMS_AT_END = 2
# The same training loss printed at this many steps in a row, to the end, and at every step but
# the first: the loss never moved. A run that came down to a value and stayed there converged; one
# printed at the floor of its precision (`0.0000`, `0.0001`) converged before its first print.
FLAT_LOSS_PRINTS = 5
FLAT_LOSS_FLOOR = 1e-3
# A finite loss that ended this many times above its lowest value, and above its first, over at
# least LOSS_ROSE_PRINTS values: it learned, then got worse (gradients left to add up without
# `zero_grad`, a learning rate too high for later epochs), short of divergence's 100 times.
LOSS_ROSE_FACTOR = 3.0
LOSS_ROSE_PRINTS = 5
# A row of a step (bare, or after a counter's word) and unnamed values, nothing else: `76970
# 2.6265104`, `120, nan`, `batch: 387 nan 0.6595617 0.72703314`, and lists of them under a table's
# header (DeepXDE: `20000  [nan, nan, nan]  [nan, nan, nan]  []`).
_BARE_NUMBER = r"[-+]?(?:nan|NaN|NAN|inf|Inf|INF|\d+\.\d*(?:[eE][-+]?\d+)?)"
_BARE_ROW = re.compile(
    r"^(?:(?:step|iter|iteration|batch|epoch)\s*[:=#]?\s*)?\[?(?P<step>\d+)\]?"
    rf"(?P<values>(?:[\s,:|\[\]]+{_BARE_NUMBER})+)[\s\[\]]*$",
    re.IGNORECASE,
)
# A scalar tensor printed as it is, not as a number (`print("step", step, loss)`): `tensor(nan,
# grad_fn=<MulBackward0>)`, `tensor(0.5321, device='cuda:0')`; its value is the number inside.
_TENSOR_REPR = re.compile(r"\btensor\((?P<value>[^,()]+)(?:,[^()]*)?\)")
_BARE_VALUE = re.compile(_BARE_NUMBER)
_BARE_ROW_WORDS = ("step", "iter", "batch", "epoch")  # a row that starts with a word starts so
BARE_ROW_MAX = 160  # longer lines are not such rows: not worth a regex
BARE_ROWS_BEFORE = 3  # finite rows that make a series before a non-finite one counts
_EVAL_NAME = re.compile(r"(?i)(?:^|[^a-z])(?:val|valid|validation|eval|test|dev)[_ /\-]")
_EPOCH_NAME = re.compile(r"(?i)epoch|avg|mean|average")  # a per-epoch summary, not a step's loss
# "Average Training loss"
_AVERAGE_BEFORE = re.compile(r"(?i)\b(?:average|avg|mean)\W+(?:\w+\W+)?$")
# a line that also gives the run's total time is the run's summary: its loss is the whole run's mean
# (`{'train_runtime': '0.0091', ..., 'train_loss': '6.758'}`, `Total training time: 1:02:03`)
_RUN_SUMMARY = re.compile(r"(?i)\b(?:train_)?runtime\b|\btotal[ _](?:training[ _])?time\b")
_EVAL_DESC = re.compile(r"valid|\bval\b|eval|test|predict|sanity", re.I)
# A bar of the work around training: datasets' `Map`/`Filter`, a cache or label scan (YOLO's
# `train: Scanning ... images and labels`), a download, checkpoint shards loading or writing (a
# Trainer's save between steps: `Writing model shards 1/1`). Its end is not the end of the
# training loop.
_SETUP_DESC = re.compile(
    r"\b(?:Scanning|Caching|Downloading|Extracting|Unpacking|Fetching|Resolving data files|"
    r"Computing checksums|Generating \w+ split|Map|Filter|Tokeniz\w*|Preprocess\w*|"
    r"Loading checkpoint shards|(?:Writing|Saving) (?:model|checkpoint) shards)\b"
)
# ... or a bar whose rate counts what no training loop steps over: notebook cells (papermill's
# `Executing: 4/5 [..., 1.30cell/s]`, or `12.5s/cell` when slow), dataset examples (`Casting the
# dataset: 0/500 [... examples/s]`), files or bytes
_SETUP_RATE = re.compile(
    r"[\d.?]\s?(?:cells?|ex|examples?|files?|[kMGT]?i?B)/s\b"
    r"|[\d.?]\s?s/(?:cells?|ex|examples?|files?)\b"
)
# Ray's log deduplication: the first of lines its workers repeated, then a count of the others
_RAY_REPEATED = re.compile(r"\[repeated \d+x across cluster\]")
# An exception's line (`RuntimeError: loss is nan at step 23`): its counters say where the error
# was met, in the program's own words, not a progress line's position.
_EXCEPTION_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Interrupt)\b:")
# A program's options printed at start (argparse's `Namespace(epoch=200, ...)`, a dataclass of
# arguments or a config): its counters are settings, not where the loop stands.
# So is a line that says it lists settings (`Config: lr=0.05 epochs=20 batch=32`).
_OPTIONS_REPR = re.compile(
    r"^\s*(?:Namespace|\w*(?:Arguments|Args|Config|Options))\(\w+="
    r"|^\W*(?i:config(?:uration)?|args|arguments|hyper-?parameters|hparams|settings|options|params)"
    r"\s*[:=]"
)
# A checkpoint loaded or restored, or a run resumed, from a position (`loading pretrained weights
# from epoch 20`, `Restored checkpoint at step 3000`): the counters are the checkpoint's, not where
# this run's loop stands (a real run that failed loading them read "stopped at epoch 20").
_LOADED_FROM = re.compile(
    r"(?i)\b(?:load(?:s|ed|ing)?|restor(?:e|es|ed|ing)|resum(?:e|es|ed|ing))\b"
    r".{0,60}?\b(?:from|at)\b.{0,40}?\b(?:epoch|step|iter)"
)


# A running best's starting value: `best = float("inf")` (or `-inf` for a score) is the idiom of a
# hand-written early stop or checkpoint choice, printed as it is when no epoch ever improved on it
# (`Early stopping: no improvement for 3 epochs (best val_loss=inf)`, a real run whose comparison
# was written backwards). An infinity under such a name is no value the run computed; a NaN is.
# The word before the name (`best val_loss=inf`), or the name's own (`best_loss: inf`).
_RUNNING_BEST_BEFORE = re.compile(r"(?i)\b(?:best|lowest|highest|min|max)\W{1,3}$")


def _running_best_start(text: str, match: re.Match[str]) -> bool:
    """Whether the match is an infinity printed as a running best not yet set."""
    if "inf" not in match.group("value").lower():
        return False
    name = match.group("name").lower()
    return bool(
        name == "best"
        or name.startswith("best_")
        or _RUNNING_BEST_BEFORE.search(text, max(0, match.start() - 12), match.start())
    )


def _nonfinite_values(text: str) -> list[re.Match[str]]:
    """The `name: nan` and `name nan` pairs of a line, in the order written."""
    found = list(_NONFINITE.finditer(text))
    spaced = [m for m in _NONFINITE_SPACED.finditer(text) if not _overlaps(m, found)]
    return sorted(found + spaced, key=lambda m: m.start()) if spaced else found


def _overlaps(match: re.Match[str], others: list[re.Match[str]]) -> bool:
    return any(o.start() < match.end() and match.start() < o.end() for o in others)


def _loaded_from(text: str) -> bool:
    return ("oad" in text or "esto" in text or "esum" in text) and bool(_LOADED_FROM.search(text))


# A status table's rows: `| name | value |` (Ray Tune, tabulate, markdown) or rich's box lines.
_TABLE_RULES = "|\u2502\u2503"
_TABLE_CELL = re.compile(rf"\s*[{re.escape(_TABLE_RULES)}]\s*")
_TABLE_NAME = re.compile(r"[A-Za-z_][\w ./()\-]*$")  # a header's cell: a name, not a rule
# fastprogress's bar under fastai: its comment after the count and the clock is the smoothed loss.
_FASTPROGRESS_LOSS = re.compile(
    r"\[\d+/\d+ [\d:]+<[\d:?]*\.\.\. (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|nan|inf))\]"
)
# A table's header laid out with spaces: names only, two spaces or more apart (fastai's
# `epoch     train_loss  valid_loss  accuracy  time`, skorch's right-aligned `  epoch    train_loss
# valid_acc ...`); read where one of them names a loss.
_SPACED_HEADER = re.compile(r"\s*[A-Za-z_][\w./\-]*(?: {2,}[A-Za-z_][\w./\-]*)+\s*$")
# What a metric's name holds: a quality measure, or the split it was measured on.
_METRIC_NAME = re.compile(
    r"(?i)acc|auc|rmse|mse|mae|mape|f1|precision|recall|ppl|perplexity|score|metric|error|"
    r"logloss|nll|bleu|rouge|iou|dice|map\b|grad_?norm|gnorm|reward|kl|entropy|^(?:val|valid|eval|"
    r"test|train|dev)[_/\-]|l[12]$|huber|ndcg|^(?:learn|test)$"  # `learn`, `test`: CatBoost's
)
# rich progress bars (and Lightning's RichProgressBar): `Epoch 1/9 ━━━━━━━━━━ 32/40 0:00:05 ...`.
_RICH_BAR = re.compile(
    r"[━╸╺─]+\s+(?P<n>\d+)/(?P<total>\d+)\b"
    # ... drawn before its first step, the bar still blank: the count, its clock and rich's `•`
    r"|\s{2,}(?P<n0>\d+)/(?P<total0>\d+) (?:\d+:)?\d+:\d\d •"
)
# A word that holds a path separator or ends in a file extension: `exp-batch16/train.py`,
# `run-step3.py`. Counters inside it are a file's name, not the loop's position.
_PATH_WORD = re.compile(
    r"(?<!\d)[/\\]|[/\\](?!\d)|\.(?:py|pyc|sh|log|txt|json|ya?ml|toml|cfg|ckpt|pt|pth|bin)$"
)
# rich lays out a bar's metrics as a table column off a terminal (Lightning's RichProgressBar at 80
# columns): a name may end one line (`train_loss_step:`) and its value start the next (`nan`).
_DANGLING_NAME = re.compile(r"(?P<name>[A-Za-z_][\w./\-]*):\s*$")
_WRAPPED_VALUE = re.compile(r"^\s*(?P<value>\S+)\s*$")
# The last part of a loss group's path that names the loss itself: `losses/total`.
_LOSS_TOTALS = frozenset(("total", "sum", "all", "overall"))
_SCALE = {"k": 1e3, "M": 1e6, "G": 1e9}
# (count so far, global step, value, the line, position text, whether the loop had finished) for
# each non-finite loss.
NonFiniteObserver = Callable[[int, int, float, LogLine, str | None, bool], None]


@dataclass(frozen=True)
class ProgressPosition:
    """Where the loop stood: epoch and step counters as printed, with their totals when known."""

    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    steps: int | None = None
    unit: str = "batch"  # what `step` counts: "batch" (a bar), "step" or "iter" (log lines)

    def describe(self) -> str | None:
        parts = []
        if self.epoch is not None:
            parts.append(f"epoch {self.epoch}" + (f"/{self.epochs}" if self.epochs else ""))
        if self.step is not None:
            parts.append(f"{self.unit} {self.step}" + (f"/{self.steps}" if self.steps else ""))
        return ", ".join(parts) or None

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "epochs": self.epochs,
            "step": self.step,
            "steps": self.steps,
            "unit": self.unit,
        }


def ran_to_its_end(finished: bool | None, position: ProgressPosition) -> bool:
    """ProgressFacts.ran_to_its_end, for the tracker that makes them."""
    if finished is not True:
        return False
    return position.steps is None or position.step is None or position.step >= position.steps


@dataclass(frozen=True)
class ProgressFacts:
    """What the output showed of the training loop: where it was, whether it finished, the values
    it printed. Counts and values only: what a framework's sentence means is the knowledge base's.
    """

    stopped_at: str | None  # "epoch 1/10, batch 9/16": where the run was when it stopped
    position: ProgressPosition
    finished: bool | None  # True when the outermost loop reached its total; None when unknown
    # (global step, training loss) per step, thinned to at most LOSS_SAMPLES; finite values only.
    losses: tuple[tuple[int, float], ...] = ()
    # Per-epoch summaries (`train_loss_epoch`, "Average Training loss"), apart from the steps.
    epoch_losses: tuple[tuple[int, float], ...] = ()
    last_loss: float | None = None  # the last training loss printed, NaN included
    # The first training loss printed as NaN/Inf: (step, value, line), and where the loop was then.
    first_nonfinite_loss: tuple[int, float, LogLine] | None = None
    first_nonfinite_at: str | None = None
    # When the output holding that loss came (time.time()): in a live run, as the program printed
    # it (a checkpoint saved after it may hold non-finite weights); in a saved log, when read.
    first_nonfinite_read_at: float | None = None
    # the same for the first training loss: in a live run, when training was under way
    first_loss_read_at: float | None = None
    # ... and for the line that brought the loop to its total, when it finished: what the run did
    # after it (an export, a final evaluation) was no training
    finished_read_at: float | None = None
    # The first other metric printed as NaN/Inf: (name, value, line).
    first_nonfinite_metric: tuple[str, float, LogLine] | None = None
    # The last training loss printed and how many steps in a row it was printed the same, when
    # FLAT_LOSS_PRINTS or more: a loss that never moved.
    flat_loss: tuple[float, int] | None = None
    # (lowest, last) of a finite loss that ended LOSS_ROSE_FACTOR times its lowest or more, and
    # above its first, without diverging
    loss_rose: tuple[float, float] | None = None
    # The gradient norms printed last were non-finite, NONFINITE_NORMS_AT_END of them or more in a
    # row: (the first of those, its line).
    nonfinite_grad_norm: tuple[float, LogLine] | None = None
    # A finite loss rose by orders of magnitude (>= 100x its minimum, >= 10x its start).
    diverged: bool = False
    last_progress_line: LogLine | None = None
    first_progress_line: LogLine | None = None  # the first line that moved the loop's position
    lines_after_progress: int = 0  # non-blank lines printed after the last progress change
    # One of those lines spoke of an error, an exception, a traceback, a kill or an abort.
    error_after_progress: bool = False
    loss_count: int = 0  # loss values seen in all, before thinning
    nonfinite_count: int = 0  # non-finite losses seen, once per step and line

    @property
    def ran_to_its_end(self) -> bool:
        """Did the loop reach its total, the last epoch's steps too where they were counted? (An
        epoch counter at its total with its steps short of theirs crashed inside that epoch.)"""
        return ran_to_its_end(self.finished, self.position)

    def sparkline_values(self, points: int = 40) -> tuple[float, ...]:
        """The loss series reduced to `points` values (the mean of each bucket), for a small
        chart.
        """
        values = [v for _, v in self.losses]
        if len(values) <= points:
            return tuple(values)
        size = len(values) / points
        return tuple(
            sum(chunk) / len(chunk)
            for chunk in (
                values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)]
                for i in range(points)
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's `progress` section."""
        nonfinite = None
        if self.first_nonfinite_loss is not None:
            step, value, line = self.first_nonfinite_loss
            nonfinite = {
                "step": step,
                "value": str(value),
                "at": self.first_nonfinite_at,
                "line": line.text[:CITED_CHARS],
                "source": line.where,
            }
        metric = None
        if self.first_nonfinite_metric is not None:
            name, value, line = self.first_nonfinite_metric
            metric = {
                "name": name,
                "value": str(value),
                "line": line.text[:CITED_CHARS],
                "source": line.where,
            }
        return {
            "stopped_at": self.stopped_at,
            "position": self.position.to_dict(),
            "finished": self.finished,
            "first_nonfinite_loss": nonfinite,
            "first_nonfinite_metric": metric,
            "diverged": self.diverged,
            "loss_count": self.loss_count,
            "nonfinite_count": self.nonfinite_count,
            "last_loss": None if self.last_loss is None else _json_number(self.last_loss),
            # Every sample kept (the tracker thins them to under 2 * LOSS_SAMPLES): the HTML chart
            # of a saved report draws the whole run from it.
            "losses": [[s, v] for s, v in self.losses],
            "epoch_losses": [[s, v] for s, v in self.epoch_losses[-200:]],
            "sparkline": [round(v, 6) for v in self.sparkline_values()],
        }


def _json_number(value: float) -> float | str:
    """JSON has no NaN: a non-finite value is written as its name."""
    return value if math.isfinite(value) else str(value)


# a line that names where the best result was (an early-stopping summary, a checkpoint's choice)
_LOOKING_BACK = re.compile(r"(?i)\bbest\b[^;\n]{0,80}?\b(?:at|in|from|of) (?:epoch|step|iter)")
# the fewest spaces a frame that erases a bar holds (tqdm writes the bar's whole width)
CLEARED_WIDTH = 20


@dataclass
class _Counter:
    """One progress counter (a bar or a numbered line) and what its history says about where it
    counts from.
    """

    n: int
    total: int | None
    zero_based: bool = False  # saw 0 printed while items were still being processed (`epoch 0/10`)
    tqdm_like: bool = False  # n counts completed items, so n == total means done
    gap: int = 0  # how far n moved from the line before
    # the gap, once two lines in a row moved by it: a loop that prints every 8th step
    stride: int = 1
    moved: bool = False  # a bar drawn past 0 at least once
    drawn: int = 0  # when it was last drawn or moved (_State.draws then)
    # drawn at 0 with the values the loop sets after a step (`loss=6.79`): a step ran, and the loop
    # left before the bar counted it (a `break` after the first batch)
    stepped_at_zero: bool = False
    # erased after its last frame (tqdm's `leave=False` close writes the bar's width of spaces): its
    # loop is over, and its last frame, drawn at most every 0.1 s, need not be where it ended
    cleared: bool = False

    def __post_init__(self) -> None:
        self.moved = self.moved or self.n > 0

    def done(self) -> bool | None:
        if self.total is None:
            return None
        last = self.total if self.tqdm_like or not self.zero_based else self.total - 1
        # a loop that prints every `stride` steps never prints its last when the next print would
        # fall past it (`step 392/400` every 8 from 0): it reached the end all the same
        return self.n >= last or self.n + self.stride > last


@dataclass
class _State:
    epoch: _Counter | None = None
    step: _Counter | None = None
    unit: str = "batch"
    # every training bar by its key, last state
    bars: dict[str, _Counter] = field(default_factory=dict)
    # the epoch was last moved by a header alone on its line (Keras's `Epoch 10/10`, printed as
    # the epoch starts), and no bar or step has counted since: it began, nothing says it ended
    epoch_only_opened: bool = False
    # an earlier header alone was followed by counting: headers open their epochs in this log
    headers_open_epochs: bool = False
    # steps were counted before the first epoch was named: a loop that names each epoch as it
    # ends, whose last header closes the loop
    counted_before_epochs: bool = False
    draws: int = 0  # counters drawn or moved so far: which came last

    def drew(self, counter: _Counter) -> None:
        self.draws += 1
        counter.drawn = self.draws
        counter.cleared = False

    def bar_erased(self) -> None:
        """A frame of spaces as wide as a bar: the bar drawn last was erased (tqdm's close of a
        `leave=False` bar)."""
        last = max(self.bars.values(), key=lambda c: c.drawn, default=None)
        if last is not None and last.tqdm_like and last.drawn == self.draws:
            last.cleared = True

    def unseen(self, counter: _Counter) -> bool:
        """A bar never drawn past 0 whose epoch moved on after it: tqdm draws at most every
        0.1 s, and a bar a fast loop ran through is cleared at its end (`leave=False`) unseen."""
        return (
            counter.tqdm_like
            and not counter.moved
            and not counter.stepped_at_zero
            and self.epoch is not None
            and self.epoch.drawn > counter.drawn
        )

    def counted(self) -> None:
        """A bar or a step counted: the epoch a header opened is under way."""
        if self.epoch is None:
            self.counted_before_epochs = True
        if self.epoch_only_opened:
            self.headers_open_epochs = True
            self.epoch_only_opened = False


class ProgressTracker:
    """Fed every line of output (and every `\\r` segment); follows counters and losses in bounded
    memory.
    """

    def __init__(
        self,
        on_nonfinite: NonFiniteObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Told of each non-finite loss as it is read (--on-nan, notifications): count, step,
        # value, the line, the position text.
        self._on_nonfinite = on_nonfinite
        self._nonfinite_count = 0
        self._nonfinite_key: tuple[int, int] | None = None
        # monotonic time of the last progress change (the stall detector reads it)
        self.last_progress_at: float | None = None
        self.last_output_at: float | None = None  # monotonic time of the last line of any kind
        self._state = _State()
        self._losses: list[tuple[int, float]] = []
        self._epoch_losses: list[tuple[int, float]] = []
        self._last_loss: float | None = None
        self._stride = 1  # keep one loss sample in `_stride` after thinning
        self._skipped = 0
        self._loss_count = 0
        # each writer's first and lowest loss (a rank, a pid its capture prefix names; None for
        # lines without one): interleaved runs (Ray Tune's trials, ranks) are curves of their own
        self._deduplicated = False  # a log deduplicator's summary line was seen (Ray's)
        self._first_loss: dict[int | str | None, float] = {}
        self._min_loss: dict[int | str | None, float] = {}
        self._diverged = False
        self._last_loss_source: str | None = None  # the writer of the last loss read
        self._nonfinite: tuple[int, float, LogLine] | None = None
        self._nonfinite_at: str | None = None
        # when the output holding it came (`clock`: a live run's feed says when each chunk came)
        self._nonfinite_read_at: float | None = None
        self._first_loss_read_at: float | None = None  # the same, for the first loss of all
        self._moved_read_at: float | None = None  # the same, for the last move of the position
        self._clock = clock
        self._nonfinite_metric: tuple[str, float, LogLine] | None = None
        # names no metric's words know, printed NaN: on how many lines, the first of them
        self._unknown_nan: dict[str, tuple[int, float, LogLine]] = {}
        # the gradient norms printed non-finite since the last finite one: (count, first, line)
        self._nonfinite_norms: tuple[int, float, LogLine] | None = None
        # the last loss printed, at how many steps in a row, the last of them (a loss that never
        # moves: no optimizer step, every batch's error swallowed)
        self._same_value: float | None = None
        self._same_count = 0
        self._same_step: int | None = None
        self._bare_rows = 0  # rows of bare numbers seen so far (`76970 2.6265104`)
        # (step, first non-finite value, row) of the non-finite bare rows since the last finite one
        self._nonfinite_rows: list[tuple[int, float, LogLine]] = []
        self._last_progress_line: LogLine | None = None
        self._first_progress_line: LogLine | None = None
        self._after_progress = 0
        self._error_after_progress = False
        self._position_key: tuple | None = None
        self._dangling: str | None = None  # a metric's name that ended the last line
        self._after_frame = False  # the last line was a traceback's frame: this one is its code
        self._table_header: list[str] | None = None  # the names of a status table's columns
        # the names of a table's columns laid out with spaces, one of them a loss (fastai's
        # `epoch  train_loss  valid_loss  time`): its rows start with the epoch's number
        self._spaced_header: list[str] | None = None

    def feed(self, line: LogLine) -> None:
        """Take one line; lines holding `\\r`-updated bars are split into their segments."""
        self.last_output_at = time.monotonic()
        text = line.text
        if "\r" in text:
            for segment in text.split("\r"):
                if segment and not segment.isspace():
                    self._feed_text(segment, line)
                elif len(segment) >= CLEARED_WIDTH:
                    self._state.bar_erased()
        elif text and not text.isspace():
            self._feed_text(text, line)
        elif len(text) >= CLEARED_WIDTH:
            self._state.bar_erased()

    def _feed_text(self, text: str, line: LogLine) -> None:
        # a traceback's frame line: the source line under it is code (`fit(model, steps=5000)`),
        # whose counters are arguments, not where the loop stood
        after_frame, self._after_frame = self._after_frame, False
        if 'File "' in text and is_frame_line(text):
            self._after_frame = True
            return
        if after_frame or _OPTIONS_REPR.match(text):
            return
        lower = text.lower()
        if self._dangling is not None:
            self._read_wrapped_value(self._dangling, text, line)
        self._dangling = None
        if text.rstrip().endswith(":"):
            dangling = _DANGLING_NAME.search(text)
            self._dangling = None if dangling is None else dangling.group("name")
        # Ray's summary of a line its workers repeated is a copy of that line, printed late (often
        # at the very end): no position and no loss of now, only a non-finite value still seen
        # (a real Tune run read "stopped at epoch 1" after its epoch 7)
        repeated = "across cluster]" in text and _RAY_REPEATED.search(text) is not None
        if repeated:
            self._deduplicated = True
        moved = (
            False
            if repeated or _EXCEPTION_LINE.match(text) or _loaded_from(text)
            else self._read_position(text, lower)
        )
        if ("loss" in lower or "cost" in lower) and (
            not repeated or "nan" in lower or "inf" in lower
        ):
            self._read_losses(text, line)
        if "... " in text:
            self._read_bar_comment(text, line)
        if "norm" in lower:
            self._read_grad_norm(text, line)
        # An `or` of `in` tests costs a fraction of one regex search, and most lines fail both.
        if self._nonfinite_metric is None and (
            "nan" in lower or (lower.count("inf") > lower.count("info") and _INF_WORD.search(lower))
        ):
            self._read_nonfinite_metric(text, line)
        if len(text) <= BARE_ROW_MAX and (
            text[:1].isdigit()
            or (text[:1] == "[" and text[1:2].isdigit())  # `[12] nan`
            or lower.startswith(_BARE_ROW_WORDS)
        ):
            self._read_bare_row(text, line)
        if (lead := text.lstrip()[:1]) and lead in _TABLE_RULES:
            self._read_table_row(text, line)
        elif "loss" in lower and _SPACED_HEADER.match(text):
            self._spaced_header = text.split()
        elif self._spaced_header is not None and lead.isdigit():
            self._read_spaced_row(text, line)
        if not moved:
            self._after_progress += 1
            if (
                "error" in lower
                or "exception" in lower
                or "traceback" in lower
                or "killed" in lower
                or "abort" in lower
                or "fatal" in lower
            ):
                self._error_after_progress = True
            return
        key = self._key()
        if key != self._position_key:
            self._position_key = key
            self.last_progress_at = time.monotonic()
            self._moved_read_at = self._clock()
            self._last_progress_line = line
            self._first_progress_line = self._first_progress_line or line
            self._after_progress = 0
            self._error_after_progress = False

    def _read_wrapped_value(self, name: str, text: str, line: LogLine) -> None:
        """A metric whose name ended the line before and whose value is this line (rich's wrapped
        metrics column): read as `name: value`."""
        value = _WRAPPED_VALUE.match(text)
        if value is None or _float(value.group("value")) is None:
            return
        joined = f"{name}: {value.group('value')}"
        if "loss" in name.lower():
            self._read_losses(joined, line)
        if self._nonfinite_metric is None:
            self._read_nonfinite_metric(joined, line)

    def _read_position(self, text: str, lower: str) -> bool:
        """Update counters from a bar, a Keras step line, or epoch/step words; True when the line
        had any.
        """
        state = self._state
        cut = text.find("%|")
        bar = None if cut < 0 else _BAR_TAIL.match(text, cut + 2)
        if bar is not None:
            role, epoch, epochs, key = _read_bar_description(text[:cut])
            if role == "eval" or _prepares(role, text, bar):
                return True  # a validation or preparation bar: not the training loop's progress
            n, total = _count(bar.group("n")), _count(bar.group("total"))
            key = f"{key}|{total}"
            counter = state.bars.get(key)
            if counter is None:
                counter = state.bars[key] = _Counter(n, total, tqdm_like=True)
            counter.n = n
            counter.moved = counter.moved or n > 0
            counter.stepped_at_zero = counter.stepped_at_zero or (
                n == 0 and _BAR_POSTFIX.search(text) is not None
            )
            state.drew(counter)
            state.counted()
            if role == "epochs":  # `Epochs: 30%|... | 3/10`: the bar counts epochs itself
                self._set_epoch(n, str(total), tqdm_like=True)
                return True
            if role == "epoch":  # `Epoch 3/10: 37%|... | 37/100`: the epoch is in the description
                self._set_epoch(epoch, epochs)
            state.step, state.unit = counter, "batch"
            return True
        if not (
            "/" in text
            or "epoch" in lower
            or "step" in lower
            or "iter" in lower
            or "batch" in lower
        ):
            return False
        if 'File "' in text:
            return False  # a traceback's frame: `batch16/train.py` is a path, not a position
        keras = _KERAS_STEP.match(text)
        if keras is not None:
            counter = _Counter(int(keras.group("n")), int(keras.group("total")), tqdm_like=True)
            state.bars[f"keras|{counter.total}"] = counter
            state.drew(counter)
            state.step, state.unit = counter, "batch"
            state.counted()
            return True
        rich = _RICH_BAR.search(text) if "━" in text or "─" in text or "•" in text else None
        if rich is not None:
            desc = text[: rich.start()]
            if _EVAL_DESC.search(desc):
                return True  # a validation bar: progress of a side loop, not of training
            epoch = _EPOCH.search(desc)
            if epoch is not None:
                self._set_epoch(int(epoch.group("n")), epoch.group("total"))
            n, total = (
                rich.group("n") or rich.group("n0"),
                rich.group("total") or rich.group("total0"),
            )
            counter = _Counter(int(n), int(total), tqdm_like=True)
            state.bars[f"rich|{counter.total}"] = counter
            state.drew(counter)
            state.step, state.unit = counter, "batch"
            state.counted()
            return True
        if "best" in lower and _LOOKING_BACK.search(text):
            return False  # `Best val_loss=0.71 at epoch 1`: where the best was, not where it is
        found = False
        epoch = _outside_paths(_EPOCH, text) if "epoch" in lower else None
        if epoch is not None:
            before = state.epoch
            self._set_epoch(int(epoch.group("n")), epoch.group("total"))
            if state.epoch is not before:  # a new epoch: is its header alone on the line?
                rest = text[: epoch.start()] + text[epoch.end() :]
                state.epoch_only_opened = not any(c.isalnum() for c in rest)
            found = True
        step = (
            _outside_paths(_STEP, text)
            if ("step" in lower or "iter" in lower or "batch" in lower)
            else None
        )
        if step is not None and step.group("plural") and not step.group("total"):
            step = None
        if step is not None:
            state.counted()
            kind = step.group("kind").lower()
            unit = "iter" if kind.startswith("iter") else kind
            n = int(step.group("n"))
            total = int(step.group("total")) if step.group("total") else None
            previous = state.step if state.unit == unit else None
            zero = n == 0 or (previous is not None and previous.zero_based)
            counter = _Counter(n, total, zero_based=zero)
            if previous is not None and previous.total == total and n > previous.n:
                counter.gap = n - previous.n
                counter.stride = counter.gap if counter.gap == previous.gap else 1
            state.step, state.unit = counter, unit
            found = True
        return found

    def _set_epoch(self, n: int, total: str | None, tqdm_like: bool = False) -> None:
        previous = self._state.epoch
        if (
            previous is not None
            and previous.n == n
            and (total is None or str(previous.total) == total)
        ):
            return  # the same epoch again: a bar refreshing
        if previous is not None and not tqdm_like:
            if n < previous.n and n > 1:
                # "best accuracy at epoch 271" after epoch 399: a summary, not the loop going back
                return
            if total is None and previous.total is not None and n <= previous.total:
                # "Epoch 00318: early stopping" still counts towards /1000
                total = str(previous.total)
        zero = n == 0 and not tqdm_like or (previous is not None and previous.zero_based)
        self._state.epoch = _Counter(
            n, int(total) if total else None, zero_based=zero, tqdm_like=tqdm_like
        )
        self._state.drew(self._state.epoch)

    def _key(self) -> tuple:
        s = self._state
        return (
            None if s.epoch is None else (s.epoch.n, s.epoch.total),
            None if s.step is None else (s.step.n, s.step.total),
        )

    def _position(self) -> ProgressPosition:
        s = self._state
        step = s.step
        if step is not None and s.unseen(step):
            step = None  # a batch bar the epochs moved past at 0 tells nothing of where it was
        return ProgressPosition(
            epoch=None if s.epoch is None else s.epoch.n,
            epochs=None if s.epoch is None else s.epoch.total,
            step=None if step is None else step.n,
            steps=None if step is None else step.total,
            unit=s.unit,
        )

    def _global_step(self) -> int:
        s = self._state
        if s.step is None:
            return self._loss_count
        if s.epoch is not None and s.step.total:
            base = s.epoch.n if s.epoch.zero_based or s.epoch.tqdm_like else s.epoch.n - 1
            return max(base, 0) * s.step.total + s.step.n
        return s.step.n

    def _read_losses(self, text: str, line: LogLine) -> None:
        terms = _LOSS_TERMS.search(text)
        if terms is not None:
            self._read_loss_terms(terms.group("terms"), line, text)
            return
        for match in _LOSS.finditer(text):
            name = match.group("name")
            value = _float(match.group("value"))
            if value is None or _EVAL_NAME.search(f" {name}"):
                continue  # validation losses do not make the training curve
            if _running_best_start(text, match):
                continue
            if not _names_a_loss(name):
                continue  # `fastrcnn_losses/num_fg_label`: a count filed under the losses' group
            if (
                _EPOCH_NAME.search(name)
                or _AVERAGE_BEFORE.search(text, 0, match.start())
                or _RUN_SUMMARY.search(text)
            ):
                if math.isfinite(value):
                    self._epoch_losses.append((self._global_step(), value))
                    del self._epoch_losses[:-LOSS_SAMPLES]
                    continue
                # an average that is NaN or Inf had one among its steps: the loss went non-finite
            self._take_loss(value, line, text)

    def _take_loss(self, value: float, line: LogLine, text: str) -> None:
        """One training loss read: the last one, and a step of the curve or its first NaN/Inf."""
        self._last_loss = value
        if math.isfinite(value):
            self._add_loss(value, line)
        else:
            self._add_nonfinite(value, _segment(line, text))

    def _read_bar_comment(self, text: str, line: LogLine) -> None:
        """fastprogress's bar as fastai fills it: the smoothed training loss after its count and
        clock, unnamed (`[3/7 00:00<00:00... 13134684941982363250031046516801536.0000]`); a real
        run's loss that grew to 1e34 before TerminateOnNaNCallback stopped it read as a `break`."""
        for match in _FASTPROGRESS_LOSS.finditer(text):
            value = _float(match.group("value"))
            if value is not None:
                self._take_loss(value, line, text)

    def _read_loss_terms(self, terms: str, line: LogLine, text: str) -> None:
        values = {
            m.group("name").lower(): float(m.group("value")) for m in _LOSS_TERM.finditer(terms)
        }
        nonfinite = next((v for v in values.values() if not math.isfinite(v)), None)
        total = nonfinite if nonfinite is not None else values.get("total", values.get("loss"))
        if total is not None:
            self._take_loss(total, line, text)

    @property
    def last_loss(self) -> float | None:
        """The last training loss read, NaN included (`trainwatch ps` shows it live)."""
        return self._last_loss

    def _add_nonfinite(self, value: float, line: LogLine) -> None:
        """Count a non-finite loss once per step and line: a tqdm bar redraws the same `loss=nan`
        many times in one line (one line number for all its `\r` segments) at the same step."""
        step = self._global_step()
        if self._nonfinite is None:
            self._nonfinite = (step, value, line)
            self._nonfinite_at = self._position().describe()
            self._nonfinite_read_at = self._clock()
        if (step, line.number) == self._nonfinite_key:
            return
        self._nonfinite_key = (step, line.number)
        self._nonfinite_count += 1
        if self._on_nonfinite is not None:
            try:
                self._on_nonfinite(
                    self._nonfinite_count,
                    step,
                    value,
                    line,
                    self._position().describe(),
                    self._ended_by_its_count(),
                )
            except Exception:  # an observer's bug must not stop the reading of the output
                pass

    def _read_nonfinite_metric(self, text: str, line: LogLine) -> None:
        """The first metric other than the training loss printed as NaN/Inf (`val/acc: nan`,
        `val_macro_recall nan`)."""
        postfix = _BAR_POSTFIX.search(text) if "%|" in text else None
        for match in _nonfinite_values(text):
            name = match.group("name")
            if "loss" in name.lower() and _names_a_loss(name) and not _EVAL_NAME.search(f" {name}"):
                continue  # the training loss is read above
            if _running_best_start(text, match):
                continue
            value = _float(match.group("value"))
            if value is None:
                continue
            shown = (  # a NaN among the values a tqdm bar shows, whatever their names
                postfix is not None
                and match.start() >= postfix.end()
                and "nan" in match.group("value").lower()
            )
            if shown or _METRIC_NAME.search(name) or self._nan_again(name, value, line, text):
                if name in self._unknown_nan:  # cited where it was first printed NaN
                    _, value, cited = self._unknown_nan[name]
                    self._nonfinite_metric = (name, value, cited)
                else:
                    self._nonfinite_metric = (name, value, _segment(line, text))
                return

    def _nan_again(self, name: str, value: float, line: LogLine, text: str) -> bool:
        """A name no metric's words know (`rmsle`, `objective`) is a metric gone NaN once it was
        printed NaN on NAN_REPEATS lines: a setting is printed once, and settings are not NaN
        (`best gain = -inf`, LightGBM's, repeats: an Inf alone never counts)."""
        if not math.isnan(value):
            return False
        count, first, cited = self._unknown_nan.get(name, (0, value, None))
        if cited is None:
            if len(self._unknown_nan) >= MAX_NAN_NAMES:
                return False
            cited = _segment(line, text)
        self._unknown_nan[name] = (count + 1, first, cited)
        return count + 1 >= NAN_REPEATS

    def _read_grad_norm(self, text: str, line: LogLine) -> None:
        """The gradients' norm: where it stays non-finite to the end, the training did, whatever
        the loss printed says (Hugging Face's Trainer logs a non-finite loss as the mean of the
        finite ones before it, `logging_nan_inf_filter`)."""
        for match in _GRAD_NORM.finditer(text):
            value = _float(match.group("value"))
            if value is None:
                continue
            if math.isfinite(value):
                self._nonfinite_norms = None
            elif self._nonfinite_norms is None:
                self._nonfinite_norms = (1, value, _segment(line, text))
            else:
                count, first, cited = self._nonfinite_norms
                self._nonfinite_norms = (count + 1, first, cited)

    def _read_bare_row(self, text: str, line: LogLine) -> None:
        """A step and unnamed values and nothing else (`76980 nan`, `batch: 387 nan 0.66`), as
        research code prints its losses: after rows of finite values, a non-finite one is a metric
        gone non-finite."""
        row = _BARE_ROW.match(_TENSOR_REPR.sub(r"\g<value>", text) if "tensor(" in text else text)
        if row is None:
            return
        values = [_float(v) for v in _BARE_VALUE.findall(row.group("values"))]
        if any(v is None for v in values) or self._nonfinite_metric is not None:
            return
        if all(math.isfinite(v) for v in values):
            self._bare_rows += 1
            self._nonfinite_rows = []
            return
        first = next(v for v in values if not math.isfinite(v))
        if self._bare_rows >= BARE_ROWS_BEFORE:
            self._nonfinite_metric = ("value", first, _segment(line, text))
            return
        # Non-finite from the first row on (a loss that was NaN at step 0): a series of them, each
        # at a later step, is the series itself gone non-finite; one such row alone may be anything.
        step = int(row.group("step"))
        if self._nonfinite_rows and step <= self._nonfinite_rows[-1][0]:
            self._nonfinite_rows = []
        self._nonfinite_rows.append((step, first, _segment(line, text)))
        if len(self._nonfinite_rows) > BARE_ROWS_BEFORE:
            _, value, cited = self._nonfinite_rows[0]
            self._nonfinite_metric = ("value", value, cited)

    def _read_table_row(self, text: str, line: LogLine) -> None:
        """A row of a status table (Ray Tune's trials, `tabulate`, markdown): the cells are read
        under the names of the last header row, as `name: value`."""
        cells = [c.strip() for c in _TABLE_CELL.split(text.strip().strip(_TABLE_RULES))]
        if len(cells) < 2:
            return
        values = [_float(c) for c in cells]
        if all(v is None for v in values):
            if all(_TABLE_NAME.match(c) for c in cells):
                self._table_header = cells
            return
        if self._table_header is None or len(self._table_header) != len(cells):
            return
        self._read_named_cells(self._table_header, cells, values, text, line)

    def _read_spaced_row(self, text: str, line: LogLine) -> None:
        """A row of a table laid out with spaces under a header that names a loss (fastai's
        results, printed as each epoch ends): read as the status table's rows are."""
        cells = text.split()
        header = self._spaced_header
        if header is not None and len(header) == len(cells):
            self._read_named_cells(header, cells, [_float(c) for c in cells], text, line)

    def _read_named_cells(
        self,
        header: list[str],
        cells: list[str],
        values: list[float | None],
        text: str,
        line: LogLine,
    ) -> None:
        """A table row's values read under its header's names, as `name: value`."""
        loss_before, metric_before = self._nonfinite, self._nonfinite_metric
        for name, cell, value in zip(header, cells, values, strict=True):
            if value is None:
                continue
            named = f"{name.replace(' ', '_')}: {cell}"
            if "loss" in name.lower():
                self._read_losses(named, line)
            elif not math.isfinite(value) and self._nonfinite_metric is None:
                self._read_nonfinite_metric(named, line)
        # cite the row as the log holds it, not the `name: value` it was read as
        row = _segment(line, text)
        if self._nonfinite is not loss_before and self._nonfinite is not None:
            self._nonfinite = (*self._nonfinite[:2], row)
        if self._nonfinite_metric is not metric_before and self._nonfinite_metric is not None:
            self._nonfinite_metric = (*self._nonfinite_metric[:2], row)

    def _add_loss(self, value: float, line: LogLine) -> None:
        self._loss_count += 1
        if self._first_loss_read_at is None:
            self._first_loss_read_at = self._clock()
        step = self._global_step()
        if step != self._same_step:  # a bar redraws one step's loss many times: once a step
            self._same_step = step
            same = value == self._same_value
            self._same_value, self._same_count = value, self._same_count + 1 if same else 1
        source = line.capture.source if line.capture is not None else None
        self._last_loss_source = source
        first = self._first_loss.setdefault(source, value)
        if value > 0:
            lowest = self._min_loss.get(source)
            if lowest is None or value < lowest:
                self._min_loss[source] = value
            # Divergence: far above the best seen and well above the start; a loss that is merely
            # high stays put.
            elif (
                self._nonfinite is None
                and value >= 100 * lowest
                and first > 0
                and value >= 10 * first
            ):
                self._diverged = True
        self._skipped += 1
        if self._skipped < self._stride:
            return
        self._skipped = 0
        self._losses.append((self._global_step(), value))
        if len(self._losses) >= 2 * LOSS_SAMPLES:
            self._losses = self._losses[::2]
            self._stride *= 2

    def finish(self) -> ProgressFacts:
        """The facts so far; the tracker may go on being fed afterwards."""
        position = self._position()
        return ProgressFacts(
            stopped_at=position.describe(),
            position=position,
            finished=self._finished(),
            losses=tuple(self._losses),
            epoch_losses=tuple(self._epoch_losses),
            last_loss=self._last_loss,
            first_nonfinite_loss=self._nonfinite,
            first_nonfinite_at=self._nonfinite_at,
            first_nonfinite_read_at=self._nonfinite_read_at,
            first_loss_read_at=self._first_loss_read_at,
            finished_read_at=(
                self._moved_read_at if ran_to_its_end(self._finished(), position) else None
            ),
            diverged=self._diverged,
            loss_rose=self._loss_rose(),
            first_nonfinite_metric=self._nonfinite_metric,
            flat_loss=(
                (self._same_value, self._same_count)
                if self._same_count >= FLAT_LOSS_PRINTS
                and self._same_count >= self._loss_count - 1
                and abs(self._same_value or 0.0) >= FLAT_LOSS_FLOOR
                else None
            ),
            nonfinite_grad_norm=(
                self._nonfinite_norms[1:]
                if self._nonfinite_norms is not None
                and self._nonfinite_norms[0] >= NONFINITE_NORMS_AT_END
                else None
            ),
            last_progress_line=self._last_progress_line,
            first_progress_line=self._first_progress_line,
            lines_after_progress=self._after_progress,
            error_after_progress=self._error_after_progress,
            loss_count=self._loss_count,
            nonfinite_count=self._nonfinite_count,
        )

    def _loss_rose(self) -> tuple[float, float] | None:
        """(lowest, last) of the last writer's loss when it ended far above its lowest value and
        above its first (LOSS_ROSE_FACTOR), finite and short of divergence."""
        last, source = self._last_loss, self._last_loss_source
        lowest, first = self._min_loss.get(source), self._first_loss.get(source)
        if (
            self._diverged
            or self._loss_count < LOSS_ROSE_PRINTS
            or last is None
            or not math.isfinite(last)
            or not lowest
            or first is None
            or last < LOSS_ROSE_FACTOR * lowest
            or last <= first
        ):
            return None
        return lowest, last

    def _ended_by_its_count(self) -> bool:
        """Has the loop reached the end its own count names (`epoch 15/15`, `step 900/900`)? Not
        a bar's end alone: a loop that draws one bar per epoch, with no total of epochs printed,
        is between two epochs there."""
        s = self._state
        counted = (s.epoch is not None and s.epoch.total is not None) or (
            s.step is not None and s.step.total is not None and not s.step.tqdm_like
        )
        return counted and self._finished() is True

    def _finished(self) -> bool | None:
        """Whether the outermost counter reached its end, every training bar included (nested
        bars).
        """
        if self._deduplicated:
            # Ray printed only the first of its workers' repeated lines and a count: the counters
            # seen are samples of several loops, whose ends cannot be read
            return None
        s = self._state
        verdicts = [
            None
            if s.unseen(counter) or (counter.cleared and not counter.done())
            else counter.done()
            for counter in s.bars.values()
        ]
        if s.epoch is not None and s.epoch.total is not None:
            if not s.epoch.done():
                return False
            if s.epoch_only_opened and not (s.epoch.tqdm_like or s.counted_before_epochs):
                # the last epoch's header and nothing counted in it: where the earlier epochs
                # counted after theirs, this one did not run; else a header may close its epoch
                return False if s.headers_open_epochs else None
            return all(v is not False for v in verdicts)
        if s.step is not None and s.step.total is not None and not s.step.tqdm_like:
            return s.step.done()
        known = [v for v in verdicts if v is not None]
        return all(known) if known else None


def _outside_paths(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The first match of `pattern` whose word (from the word before it to the next space) is not
    a file's path or name: `exp-batch16/train.py`, `run-step3.py`, `epoch=3-step=100.ckpt`."""
    for match in pattern.finditer(text):
        start = end = match.start()
        while start > 0 and not text[start - 1].isspace() and text[start - 1] not in "'\"(":
            start -= 1
        while end < len(text) and not text[end].isspace() and text[end] not in "'\")":
            end += 1
        if not _PATH_WORD.search(text[start:end].rstrip(",:;")):
            return match
    return None


def _segment(line: LogLine, text: str) -> LogLine:
    """The line as cited: only the `\r` segment that matched, not the hundreds of bar updates around
    it.
    """
    return line if text is line.text else LogLine(line.number, text, line.stream)


def _count(text: str) -> int:
    """`37` -> 37; `1.2k` -> 1200 (tqdm's unit_scale)."""
    if text[-1] in _SCALE:
        return int(float(text[:-1]) * _SCALE[text[-1]])
    return int(float(text))


def nonfinite_name(value: float) -> str:
    """`nan` -> "NaN", `inf` -> "+Inf": how reports name a value that is not a number."""
    return "NaN" if value != value else ("+Inf" if value > 0 else "-Inf")


def _names_a_loss(name: str) -> bool:
    """Does a name that holds `loss` name a loss? A summary's path files metrics under a group
    (tensorpack's and TensorBoard's `fastrcnn_losses/label_metrics/accuracy`): its last part says
    what the value is (`losses/box_loss`, `loss/total` are losses); a source file's name
    (`loss.py`) does not."""
    group, _, last = name.rpartition("/")
    if last.endswith(_SOURCE_FILES):
        return False  # a warning's `torch/nn/modules/loss.py:630:`: a file and its line number
    return not group or "loss" in last.lower() or last.lower() in _LOSS_TOTALS


_SOURCE_FILES = (".py", ".pyc", ".pyx", ".cc", ".cpp", ".h")


def _float(text: str) -> float | None:
    if text[-1:] == "0" and text.lstrip("+-")[:1].isalpha() and "." in text:
        text = text[: text.index(".")]  # Lightning's bar pads `nan` to `nan.0` (tqdm format_num)
    try:
        return float(text)
    except ValueError:
        return None


def is_setup_bar(text: str) -> bool:
    """Is the line a bar of the work around training (a dataset's map, a download, a notebook's
    cells), by its description or by what its rate counts?"""
    cut = text.find("%|")
    bar = None if cut < 0 else _BAR_TAIL.match(text, cut + 2)
    return bar is not None and _prepares(_read_bar_description(text[:cut])[0], text, bar)


def _prepares(role: str, text: str, bar: re.Match[str]) -> bool:
    """Does a bar (its description's role, its line, its counts' match) count preparation?"""
    return role == "setup" or _SETUP_RATE.search(text, bar.end()) is not None


@functools.lru_cache(maxsize=256)
def _read_bar_description(head: str) -> tuple[str, int | None, str | None, str]:
    """What a bar's text before `%|` says: (role, epoch, epochs, key), the role one of "eval",
    "setup", "epochs", "epoch" and "plain"; cached, as a run prints the same few descriptions
    millions of times.
    """
    desc = _BAR_DESC.sub("", head).strip()
    key = re.sub(
        r"\d+", "#", desc
    )  # digits out: `Epoch 3/10` and `Epoch 4/10` are one bar that resets
    if _EVAL_DESC.search(desc):
        return "eval", None, None, key
    if _SETUP_DESC.search(desc):
        return "setup", None, None, key
    epoch = _EPOCH.search(desc)
    if epoch is not None:
        return "epoch", int(epoch.group("n")), epoch.group("total"), key
    # `Epochs` / `epoch` with no number names a bar that counts epochs
    if re.search(r"(?i)epoch", desc):
        return "epochs", None, None, key
    return "plain", None, None, key
