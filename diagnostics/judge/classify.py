"""Evidence -> verdict: the root cause, its cascades, how sure we are, and the alternatives.

The order of judgement: the knowledge base's best initiating match (signatures first, then the
generic phrase families under them); the kill rules (judge/kills.py); the quiet stops
(judge/quiet.py); what is left falls back on the exception or the exit status; last, the
consistency rule (judge/consistency.py): nothing the verdict says contradicts the facts. Every
verdict keeps the evidence it rests on, and its alternatives are other categories at a lower
confidence.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import TYPE_CHECKING

from trainwatch.diagnostics.evidence import (
    CITED_CHARS,
    REMOTE_TRACEBACK,
    Evidence,
    ExceptionChain,
    Frame,
    LogLine,
    RaisedException,
    deepest_user_frame,
    ended_by_signal,
)
from trainwatch.diagnostics.judge.collectives import JOB_MISTAKES
from trainwatch.diagnostics.judge.consistency import make_consistent
from trainwatch.diagnostics.judge.imports import (
    own_module_off_the_path,
    own_module_shadowing,
    with_install_command,
)
from trainwatch.diagnostics.judge.kills import apply_kill_rules
from trainwatch.diagnostics.judge.own_calls import own_function_called_wrongly
from trainwatch.diagnostics.judge.quiet import QUIET_PREFIX, apply_quiet, with_first_step_advice
from trainwatch.diagnostics.knowledge.words import ADVICE, ending_chain, error_line, model
from trainwatch.diagnostics.read.frames import file_name, forward_slashes, in_installed_package
from trainwatch.diagnostics.verdict import Alternative, Cited, Culprit, Verdict

if TYPE_CHECKING:  # imported where used: a run with nothing to match never loads the knowledge base
    from collections.abc import Callable, Iterator

    from trainwatch.diagnostics.knowledge import Knowledge, Match
    from trainwatch.diagnostics.knowledge.schema import Signature
    from trainwatch.diagnostics.read.logparse import LogFacts
    from trainwatch.diagnostics.read.progress import ProgressPosition
    from trainwatch.diagnostics.watch.probe.records import ProbeFacts, ProbeProcess

# Signals a person or a scheduler sends on purpose to stop a run.
STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGXCPU")
# Commands that run a program under a time limit, and the exit status each gives when it stopped
# the program for it: coreutils' timeout(1) exits 124 then (without --preserve-status), and 128+9
# when it stopped it with SIGKILL (`-s KILL`, or `-k` after the first signal went unheeded).
TIME_LIMIT_EXITS = {"timeout": 124}
TIME_LIMIT_KILLS = {"timeout": (("-s", "--signal"), ("-k", "--kill-after"))}
KILL_NAMES = ("KILL", "SIGKILL", "9")
# A line is second-hand next to the exception object itself; a cascade points elsewhere by
# definition.
LINE_WEIGHT = 0.92
CASCADE_WEIGHT = 0.5
# a stop from outside and a failure this close in score: the failure is why the run was stopped
STOP_TIE = 0.1
# Functions whose plain Python errors are usually about a sample, not the program
# (docs/explain.md).
DATA_FUNCTIONS = (
    "__getitem__",
    "__getitems__",
    "collate_fn",
    "collate",
    "default_collate",
    "load_sample",
    "load_image",
    "_load_image",
    "read_image",
    "parse_example",
    "__next__",
    "__iter__",
)
# The innermost frames of a plain Python error, named for reading data: a function that loads or
# generates the dataset (`load_dataset`, `data_generator`, `_get_gold_labels`), a dataset module,
# a Lightning-style data module or a `data_utils` one (VITS and Tacotron 2 keep their dataset and
# collate classes there), one that reads images or audio (`readImageSet`, `load_wav`), or a
# detector's `build_targets`, which indexes the prediction grid with the labels' boxes and classes
# (a box not normalised to 0-1, a class past the model's: FL003, FL004). Errors there are more
# often about what was read (an empty file list, a sample longer than the buffer, a label of
# another type, a box off the grid, an image of another size) than about the program
# (docs/explain.md).
DATA_READING_NAMES = re.compile(
    r"(?i)dataset|data_?loader|data_?gen|data_?module|data_?utils|(?:load|read|prepare|parse)_?data"
    r"|annotation|(?:load|read|decode)_?(?:image|img|audio|wav)"
    r"|^build_targets$"
)
# `load_labels`, `get_label`: the program's own label reading. A library's function of such a name
# reads labels only when its name says it gets them (flair's `_get_gold_labels`); else it checks or
# uses labels it was given (optax's `softmax_cross_entropy_with_integer_labels`, scikit-learn's
# `_check_set_wise_labels`: real runs' argument errors read as data).
OWN_LABEL_READING = re.compile(r"(?i)_labels?$")
LABEL_READING = re.compile(r"(?i)(?:^|_)(?:get|load|read|parse|make|build)_\w*labels?$")
DATA_READING_DEPTH = 3
# Functions of a library's data modules that set a pipeline up rather than read a sample: a length
# asked of an IterableDataset, a split's lengths that do not add up (real runs, forty-eighth
# session: both read as a bad sample, 67%)
LIBRARY_DATA_SETUP = frozenset(("__len__", "random_split"))
# torch's DataLoader worker calling the program's `worker_init_fn` before any sample (a real run's
# `'WorkerInfo' object has no attribute 'base_seed'` there, read as a bad sample)
WORKER_INIT_CALL = re.compile(r"\s*init_fn\(worker_id\)")
# A data loader's own step to its next batch: what is raised below it was raised making a batch.
LOADER_STEPS = frozenset(("__next__", "_next_data", "_next_index"))
DATA_LOADER_MODULE = re.compile(r"(?i)^data_?loader$")
# A folder of the program's own that holds its data code (`pcdet/datasets/augmentor/`,
# `ssd.pytorch/data/voc0712.py`): projects keep their dataset classes and their augmentation there.
# Only the file's own folder or the one above it: a mount point named `data` (`/media/user/data/`)
# holds whole projects.
DATA_PACKAGE = re.compile(r"/(?:datasets?|data|dataloaders?)/(?:[^/]+/)?[^/]+$")
# A call that does not fit its function's signature (`object() takes no parameters`, `got an
# unexpected keyword argument`, `missing 1 required positional argument`): the program's call or
# the installed release's function, never the sample the data code was reading.
CALL_SIGNATURE = re.compile(
    r"takes no (?:parameters|arguments)|unexpected keyword argument|positional arguments? but"
    r"|required (?:positional|keyword-only) arguments?"
)
# Errors about the program's own names and imports (a data package's `__init__.py` naming a class it
# never imported): raised however good the samples are, so never a sample's.
NAMES_NOT_SAMPLES = frozenset(
    ("NameError", "UnboundLocalError", "ImportError", "ModuleNotFoundError", "SyntaxError")
)
GENERIC_CODE_SUBTYPE = "code/python-error"
# How sure a run that exited 0 with no error stopping it is to have completed, nothing more known
EXITED_WELL = 0.8
SHAPE_SUBTYPE = "code/shape-mismatch"
MISSING_PATH_SUBTYPE = "library/missing-path"
SAMPLE_FETCHES = frozenset(("__getitem__", "__getitems__"))
MISSING_SAMPLE_SUBTYPE = "data/missing-file"
# the signature for a sample's media file missing, whose advice a missing sample of any kind takes
MISSING_SAMPLE_SIGNATURE = "sample-file-missing"
SYNTAX_SUBTYPE = "code/syntax-error"
# A line that does not compile although it is valid Python 3.6 or later: an f-string, an annotated
# assignment, `:=`, two unpackings in one call (3.5), a positional-only marker. Where the parser
# stopped on one of these, the program was written for a newer interpreter than the one that ran
# it (NP301: `create_net(*inputs[0].shape, *outputs[0].shape)` under Python 3.4).
NEWER_SYNTAX = re.compile(
    r"(?<![\w\"'])(?:[fF][rR]?|[rR][fF])[\"']"
    r"|:="
    # (an annotated name, not a keyword's one-line body: `else: best = 0` is any Python's)
    r"|^\s*(?!(?:lambda|else|try|finally|except|elif|if|for|while|with|def|class)\b)"
    r"[A-Za-z_][\w.]*\s*:\s*[A-Za-z_][\w.\[\], |]*\s=\s"
    r"|\*\w[\w.\[\]()]*\s*,\s*\*\w"
    r"|\bdef\s+\w+\([^)]*,\s*/\s*[,)]"
)
# Syntax errors as Python 3.10 and later word them (`expected ':'`, `'(' was never closed`,
# `invalid syntax. Perhaps you forgot a comma?`, `expected an indented block after 'if' statement
# on line 3`): an interpreter that new parses f-strings, `:=`, annotations and positional-only
# parameters.
SAID_BY_A_NEW_PYTHON = re.compile(
    r"^expected '[^']+'|was never closed|Perhaps you forgot a comma\?|after '\w+' statement on line"
    r"|^unterminated (?:triple-quoted )?string literal|^closing parenthesis '.' does not match"
)
# A size of 0 in the error of a code verdict, or of an error nothing else explains (`the existing
# size (0)`, `Tensor sizes: [100, 0]`, `array of size 0`, `axis 0 with size 0`, `input.numel() ==
# 0`, numpy's `zero-size array to reduction operation`): the tensor or array was empty, which a
# sample that holds nothing makes far more often than the program does (a clip too short for one
# frame, an image that decoded to nothing, a file of no rows). In the dev corpus every such error
# was the data's (D019, IH001, AO001, QJ002, RV001).
EMPTY_SIZE = re.compile(
    r"\bsize \(?0\)?(?![.\d])|\bsizes?: \[(?:\d+, )*0(?:, \d+)*\]|\bshape[=: ]*\((?:\d+, )*0[,)]"
    r"|\barray of size 0\b|\bwith size 0\b|\bnumel\(\) == 0\b|\bzero-size array\b"
    # a tensor built from nested lists one of which is empty
    r"|\binvalid size of dimension \d+: 0\b"
)
EMPTY_SAMPLE_MEANS = (
    "most likely an empty sample or an empty selection of one (a clip too short for one frame, "
    "an image that decoded to nothing, every label of a mask ignored, a file of no rows), possibly "
    "code that cut it empty."
)
GOOD_ENDINGS = ("completed", "early-exit")
# torch.multiprocessing.spawn's report that a process it started failed (an exception, or an exit)
SPAWN_FAILURES = ("ProcessRaisedException", "ProcessExitedException")
MAX_ALTERNATIVES = 3
# The word layer's confidence (knowledge/words.py): under every phrase family's, so any of those
# wins. Measured on the whole corpus at the end of the twelfth session: its answers at 0.5 (90% of
# the model's belief or more) were right 26 times in 38, those at 0.4 8 times in 16.
WORDS_CONFIDENCE = 0.4
WORDS_CONFIDENT = 0.5
WORDS_SURE_FROM = 0.9
# Under WORDS_LEAN_FROM of the model's belief (down to words.LEANS_FROM, whose note has the
# measure) a leaning is a guess: said, at unknown's level.
WORDS_GUESS = 0.3
WORDS_LEAN_FROM = 0.6


def classify(evidence: Evidence, knowledge: Knowledge | None = None) -> Verdict:
    """Judge the evidence against the knowledge base; the strongest initiating failure wins."""
    without = _without_thread_deaths(evidence)
    if without is not None:
        ended_well = classify(without, knowledge)
        if ended_well.category == "completed":
            return _with_thread_failure(
                replace(
                    ended_well,
                    summary=f"{ended_well.summary} A thread of it ended on an uncaught exception "
                    "(the notes say which); the process went on without that thread.",
                ),
                evidence,
                knowledge,
            )
    waited = _waited_for_a_dead_thread(evidence, knowledge)
    if waited is not None:
        return waited
    handled = _without_handled_tracebacks(evidence)
    if handled is not None and not _said_of_the_whole_run(evidence, knowledge):
        ended_well = classify(handled, knowledge)
        if ended_well.category == "completed":
            return _with_handled_errors(ended_well, evidence, knowledge)
    log = evidence.log
    chains = chains_of(evidence)
    signals = _signals(evidence)
    matches: list[Match] = []
    if chains or signals or (log is not None and (log.notable or log.tail)):
        if knowledge is None:
            from trainwatch.diagnostics.knowledge import default_knowledge

            knowledge = default_knowledge()
        matches = knowledge.match(chains, log, signals)
    ranked = sorted(matches, key=_rank, reverse=True)
    # A line saying training ended well (max_epochs reached, early stopping) does not explain a run
    # that then failed: with a known failing exit, such matches step aside.
    failed = evidence.exit is not None and evidence.exit.status != 0
    cascades = [m for m in ranked if m.signature.role == "cascade"]
    # a generic phrase's reading of what a signature reads as a consequence (a peer's reset
    # connection is ECONNRESET's words too) steps aside: the specific knowledge says whose it is
    echoes = {_read_from(m) for m in cascades if m.signature.layer == "signature"}
    # A stop read in a line (Lightning's `Received SIGTERM: 15`) where torch.multiprocessing.spawn
    # reports that one of its processes failed: spawn sent that signal to the others itself.
    spawn_failed = any(
        e.type.endswith(SPAWN_FAILURES) for chain in chains for e in chain.exceptions
    )
    # in a saved log, a traceback printed after a good ending's words (Lightning's `fast_dev_run`
    # line, then a KeyError in the code after fit) ended the run as a failing exit would
    crashed_after = max(
        (c.line for c in chains if c.origin == "log" and not c.is_error_line and c.line),
        default=0,
    )
    # the tracebacks a root's reading rests on: crashes of their own (`_went_on_from`)
    crashes = {id(m.chain) for m in ranked if m.signature.role == "root" and m.chain is not None}
    roots = [
        m
        for m in ranked
        if m.signature.role == "root"
        and not (failed and m.signature.category in GOOD_ENDINGS)
        and not (
            evidence.exit is None
            and m.signature.category in GOOD_ENDINGS
            and m.via == "line"
            and crashed_after > m.order
        )
        and not (m.signature.layer == "phrase" and _read_from(m) in echoes)
        and not (
            spawn_failed
            and m.signature.category == "interrupted"
            and all(c.kind == "log" for c in m.cited)
        )
        and not _went_on_from(m, chains, evidence, crashes)
    ]
    roots = _past_the_plain_error_of_a_wrapper(roots, echoes)
    best = _cause_said_earlier(_sizes_warned_of(_failure_before_the_stop(roots), roots), roots)

    verdict = (
        _from_match(best, ranked, cascades, chains, evidence, knowledge)
        if best is not None
        else None
    )
    worker_crashed = best is not None and _crash_of_a_process_it_waited_for(best)
    if verdict is not None and worker_crashed:
        verdict = _with_the_process_that_died(verdict, best, evidence)
    verdict = own_module_shadowing(own_module_off_the_path(verdict, evidence), evidence)
    verdict = own_function_called_wrongly(verdict, evidence)
    verdict = with_install_command(verdict)
    verdict = apply_kill_rules(
        verdict,
        needs_proof=best is not None and best.signature.needs_corroboration,
        killed="SIGKILL" in signals,
        evidence=evidence,
    )
    verdict = apply_quiet(
        verdict,
        evidence,
        generic=best is not None and best.signature.layer == "phrase",
        explains_wait=worker_crashed,
    )
    if verdict is not None and verdict.category == "unknown":
        # a kill that no memory evidence explains, under a time limiter that kills: its limit
        verdict = _time_limited(evidence) or verdict
    # only consequences seen: name them, say the cause is elsewhere
    if verdict is None and cascades:
        verdict = _from_match(cascades[0], ranked, cascades[1:], chains, evidence, knowledge)
    if verdict is None:
        verdict = _fallback(evidence, chains)
    from trainwatch.diagnostics.judge.memory import with_memory_facts

    verdict = with_memory_facts(_as_sure_as_its_exit(verdict, evidence), evidence)
    # a saved log's status shows only where a line of it says so (a rank's, inferred from its
    # uncaught exception or torchrun's table, is no evidence a reader can find)
    said = evidence.source != "log" or (evidence.log is not None and evidence.log.run_status)
    exit_cited = _exit_cited(evidence) if said else None
    if exit_cited is not None and all(c.kind != "exit" for c in verdict.evidence + verdict.cascade):
        verdict = replace(verdict, evidence=verdict.evidence + (exit_cited,))
    from trainwatch.diagnostics.judge.culprits import annotate_culprit
    from trainwatch.diagnostics.judge.recovery import (
        with_failed_saves,
        with_nonfinite_inputs,
        with_resume_advice,
        with_sample,
        with_training_done,
    )

    verdict = with_nonfinite_inputs(with_sample(annotate_culprit(verdict), evidence), evidence)
    verdict = with_first_step_advice(verdict)
    verdict = with_training_done(verdict, evidence)
    if evidence.log is not None:
        from trainwatch.diagnostics.judge.culprits import with_named_culprit

        verdict = with_named_culprit(verdict, evidence.log.tail)
    verdict = tidy(with_failed_saves(with_resume_advice(verdict, evidence), evidence))
    return make_consistent(verdict, evidence)  # last: nothing said may contradict the facts


def _as_sure_as_its_exit(verdict: Verdict, evidence: Evidence) -> Verdict:
    """A run that exited 0 with no error and said how it ended well (`test R^2: 0.885`, an
    early-stopping rule's words) is as sure as its exit alone makes it: the words name the kind of
    end, they do not weaken it (real runs: completed 0.80 without those words, 0.57 with them). A
    quiet rule's own doubt stands."""
    status = evidence.exit
    if verdict.category != "completed" or status is None or status.code != 0:
        return verdict
    if (verdict.signature or "").startswith(QUIET_PREFIX):
        return verdict  # a quiet rule weighed the loop's facts against the end (a NaN metric)
    return replace(verdict, confidence=max(verdict.confidence, EXITED_WELL))


def _exited_itself(
    exc: RaisedException, frame: Frame | None, where: str, last: LogLine | None
) -> Verdict:
    """The program ended itself with `sys.exit(...)` (the probe saw the call and where it was
    made) and nothing a signature knows explains it: its own check chose to stop, for a reason it
    said in its own words (the message, or the `last` line it printed) or not at all. No category
    is known (the words `SystemExit` lean nowhere); the line that decided is."""
    code = exc.message
    numbered = code.lstrip("-").isdigit()
    call = f"sys.exit({code})" if numbered else f"sys.exit({code!r})"
    evidence = (Cited("exception", call, "probe"),)
    if not numbered:
        reason = "with that message: a check of its own decided to stop there"
    elif last is not None:
        # the program's last words are most often its reason (a check that printed, then exited)
        words = last.text.strip()[:CITED_CHARS]
        reason = f'after its last words, "{words}": a check of its own decided to stop there'
        evidence += (Cited("log", words, last.where),)
    else:
        reason = (
            "and printed no error: a check of its own decided to stop there, for a reason it did "
            "not say"
        )
    advice = (
        "Read the condition just before that `sys.exit` call (a patience or threshold check, a "
        "missing input, a flag)"
    )
    return Verdict(
        "unknown",
        None,
        0.35,
        f"The program ended itself with `{call}`{where} {reason}.",
        evidence=evidence,
        culprit=Culprit.from_frame(frame) if frame else None,
        advice=(advice + (", and print why it exits." if numbered and last is None else "."),),
    )


def _last_words(evidence: Evidence) -> LogLine | None:
    """The last line the run printed that is not its loop's progress (a bar, a loss line)."""
    log = evidence.log
    if log is None:
        return None
    progress = evidence.progress
    shown = progress.last_progress_line if progress is not None else None
    line = next((line for line in reversed(log.tail) if line.text.strip()), None)
    if line is None or (shown is not None and line.where == shown.where):
        return None
    return line


def _left_without_shutdown(evidence: Evidence) -> bool:
    """Did the run's main Python process (the last one started fresh by the command, not forked
    from another) end without Python's normal shutdown, where the probe records its exit? Forked
    workers leave through `os._exit` by design; the main process only when cut short. One that
    outlived the command was stopped by trainwatch (`_backgrounded`)."""
    probe = evidence.probe
    if probe is None or not probe.loaded:
        return False
    pids = {p.pid for p in probe.processes}
    roots = [
        p
        for p in probe.processes
        if not p.forked and p.ppid not in pids and p.pid not in evidence.left_running
    ]
    return bool(roots) and not max(roots, key=lambda p: p.started).exited


def _backgrounded(evidence: Evidence) -> ProbeProcess | None:
    """The Python program the command started and left running when it exited (`nohup python
    train.py &` in a script), which trainwatch then stopped: the first started of them."""
    probe, progress = evidence.probe, evidence.progress
    if probe is None or not evidence.left_running:
        return None
    if progress is not None and progress.stopped_at is not None:
        return None  # a loop ran in the foreground: what it left is a helper (a TensorBoard server)
    left = [
        p for p in probe.processes if p.pid in evidence.left_running and not p.forked and p.argv
    ]
    return min(left, key=lambda p: p.started, default=None)


def _shown_argv(argv: tuple[str, ...]) -> str:
    """A process's command line, short enough for a sentence: its interpreter and scripts by
    their file names (`python train.py --lr 3`)."""
    words = [file_name(w) if i == 0 or w.endswith(".py") else w for i, w in enumerate(argv)]
    text = " ".join(words)
    return text if len(text) <= 80 else text[:77] + "..."


def tidy(verdict: Verdict) -> Verdict:
    """Alternatives a reader can trust: each category once, never the verdict's own, and each below
    the verdict's confidence."""
    seen = {verdict.category}
    kept = []
    for alt in sorted(verdict.alternatives, key=lambda a: -a.confidence):
        if alt.category in seen:
            continue
        seen.add(alt.category)
        confidence = min(alt.confidence, round(verdict.confidence - 0.05, 2))
        if confidence > 0:
            kept.append(replace(alt, confidence=confidence))
    return replace(verdict, alternatives=tuple(kept[:MAX_ALTERNATIVES]))


# ---- ranking -------------------------------------------------------------------------------------
def _failure_before_the_stop(roots: list[Match]) -> Match | None:
    """The first root, unless it is a stop from outside (a Ctrl-C's KeyboardInterrupt) that a
    failure as sure of itself shares the top with: the stop ended the run, the failure (a worker's
    files exhausted, then a wait no batch ended) is why it was stopped."""
    if not roots:
        return None
    stop = roots[0]
    if stop.signature.category != "interrupted":
        return stop
    for m in roots[1:]:
        if _crash_of_a_process_it_waited_for(m):
            return m
        if _score(m) < _score(stop) - STOP_TIE:
            break
        # before it (a failure the stop's own shutdown raised comes after it)
        failure = m.signature.category not in ("interrupted", *GOOD_ENDINGS)
        if failure and _position(m) < _position(stop):
            return m
    return stop


# A warning that compares two sizes (`... for this model (92 > 64)`): the tokenizer's, before the
# model meets the sequence it warned of.
SIZES_WARNED = re.compile(r"\((\d+) > (\d+)\)")


def _sizes_warned_of(best: Match | None, roots: list[Match]) -> Match | None:
    """A code error (shapes that do not fit) whose message names both sizes a warning printed
    before it compared (the tokenizer's `(92 > 64)`, then `The expanded size of the tensor (92)
    must match the existing size (64)`): the warning's reading is the cause (forty-third
    session's real runs: a sequence longer than the model got layer advice)."""
    if best is None or best.exception is None or best.signature.category != "code":
        return best
    for m in roots:
        if m is best or m.via != "line" or not m.cited:
            continue
        sizes = SIZES_WARNED.search(m.cited[0].text)
        if sizes and all(
            re.search(rf"(?<!\d){size}(?!\d)", best.exception.message) for size in sizes.groups()
        ):
            return m
    return best


def _past_the_plain_error_of_a_wrapper(roots: list[Match], echoes: set) -> list[Match]:
    """The plain Python error's reading of an exception a signature reads as a wrapper's summary
    steps aside where another reading stands elsewhere (scikit-learn's "All the 4 fits failed"
    ValueError, the fits' own traceback printed under it: a real run's dtype error read as the
    program's ValueError). With nothing else read (a DataLoader worker's re-raised error), it
    stays."""
    wrapped = [
        m for m in roots if m.signature.subtype == GENERIC_CODE_SUBTYPE and _read_from(m) in echoes
    ]
    if not wrapped or all(_read_from(m) in echoes for m in roots):
        return roots
    return [m for m in roots if m not in wrapped]


# Failures a log states before the one read best, on the same stream, that began it (LABELS: a
# cascade is labelled by what began it): the subtypes of the earlier reading, and which best
# readings can follow from one. Tried in turn, each on what the one before left.
CAUSES_SAID_EARLIER: tuple[tuple[tuple[str, ...], Callable[[Signature], bool]], ...] = (
    # A job's own mistake that a library stated (gloo: `Received data size doesn't match expected
    # size. Is there a distributed collective mismatch in your code?`): what a rank computed from
    # the data of another size it received followed from it (a real run: the all_gather of 51 and
    # 50 predictions, then a 64 GiB allocation for a bincount of what arrived, read as host memory
    # 96%).
    (
        JOB_MISTAKES,
        lambda sig: (
            sig.subtype not in JOB_MISTAKES and sig.category not in ("interrupted", *GOOD_ENDINGS)
        ),
    ),
    # A write that failed for want of room (or past the file-size limit) leaves a file cut short; a
    # corrupt file read later is that short file (a real run of the fiftieth session caught its
    # checkpoint's failed save, then loaded it: read as a corrupt download, 88%).
    (
        ("library/disk-full", "library/file-size-limit"),
        lambda sig: sig.subtype == "data/corrupt-file",
    ),
    # A fix of the data that pandas' copy-on-write made into no change: the values the program
    # meant to fix reached the model as they were (a real run of the fifty-first session warned of
    # its `df["label"][mask] = 0`, then met `Target -1 is out of bounds`: read as labels never
    # remapped).
    (("library/pandas-copy-on-write",), lambda sig: sig.category == "data"),
)


def _cause_said_earlier(best: Match | None, roots: list[Match]) -> Match | None:
    """`best`, or the first root that began it (CAUSES_SAID_EARLIER): read as one of a cause's
    subtypes from a line before `best`'s, on the same stream."""
    for causes, follows in CAUSES_SAID_EARLIER:
        if best is not None and follows(best.signature):
            best = next(
                (m for m in roots if m.signature.subtype in causes and _said_earlier(m, best)),
                best,
            )
    return best


def _went_on_from(
    m: Match, chains: tuple[ExceptionChain, ...], evidence: Evidence, crashes: set[int]
) -> bool:
    """Is the match's traceback one the program printed and trained on from: its loop moved
    after it, and another traceback of the same rank ended the output after that? A caught error
    printed with `traceback.print_exc()` is no cause of the crash that came later (a real run's
    skipped PIL image outranked the NameError that ended it, in a saved log and in a run). Lines
    are compared only within one stream: a run's stdout and stderr are numbered apart. The later
    traceback must be a crash some root reading rests on (`crashes`): one read as a consequence,
    or not read at all, may be another process's echo of this one (two workers' output in one log
    with no rank tags: one's NameError, the other's progress, then its "Socket closed", BX's real
    runs)."""
    chain, progress = m.chain, evidence.progress
    if chain is None or chain.origin != "log" or not chain.line:
        return False
    moved = progress.last_progress_line if progress is not None else None
    if moved is None or moved.stream != chain.stream or moved.number <= chain.line:
        return False
    return any(
        c.origin == "log"
        and c.stream == chain.stream
        and c.line
        and c.line > moved.number
        and c.rank == chain.rank
        and id(c) in crashes
        for c in chains
    )


def _crash_of_a_process_it_waited_for(m: Match) -> bool:
    """A fatal signal the probe recorded in a process of the run that was not how the run ended
    (the exit status names its own end first, `_signals`): a Pool's or a launcher's worker that
    segfaulted while the rest of the run went on, waiting for what it never sent. A Ctrl-C or a
    stall that came later is the consequence."""
    return m.via == "signal" and bool(m.cited) and m.cited[0].kind == "probe"


def _with_the_process_that_died(verdict: Verdict, best: Match, evidence: Evidence) -> Verdict:
    """The summary of a crash the rest of the run outlived says which process died, where, and
    that the run then waited for it."""
    for fatal in evidence.probe.fatal if evidence.probe is not None else ():
        if best.cited[0].source != f"probe pid {fatal.pid}":
            continue
        frame = fatal.deepest_user_frame()
        where = f" at {file_name(frame.file)}:{frame.line} in {frame.function}" if frame else ""
        stopped = evidence.stall is not None or ended_by_signal(
            evidence.exit, evidence.forwarded_signals
        )
        then = ", waiting for work it never sent back, until it was stopped" if stopped else ""
        return replace(
            verdict,
            summary=f"{verdict.summary} Process {fatal.pid} of the run died with {fatal.signal}"
            f"{where}; the rest of the run went on without it{then}.",
        )
    return verdict


def _position(m: Match) -> float:
    """Where in the log a match's evidence starts; what the probe or an exit status saw, at the
    end (they tell how the run ended, not where)."""
    if m.chain is not None:
        return m.chain.line if m.chain.origin != "probe" and m.chain.line else math.inf
    return m.order if m.via == "line" else math.inf


def _said_earlier(a: Match, b: Match) -> bool:
    """Was `a` read from a line before `b`'s, on the same stream (a run's stdout and stderr are
    numbered apart; the probe's records have no line)?"""
    first = a.cited[0].place if a.cited else None
    then = b.cited[0].place if b.cited else None
    return first is not None and then is not None and first[0] == then[0] and first[1] < then[1]


def _read_from(m: Match) -> tuple[str, str] | None:
    """The line or exception a match rests on (its first citation)."""
    return (m.cited[0].source, m.cited[0].text) if m.cited else None


def _score(m: Match) -> float:
    score = m.signature.confidence
    if m.via == "line" or (m.chain is not None and m.chain.is_error_line):
        score *= LINE_WEIGHT
    if m.signature.role == "cascade":
        score *= CASCADE_WEIGHT
    return score


def _rank(m: Match) -> tuple:
    # Roots over cascades; then how sure a match makes us; then specific signatures over generic
    # phrases; then the author's priority; then what came first (the first-raised exception of a
    # chain, the earliest line): the initiating failure precedes its echoes.
    return (
        m.signature.role == "root",
        round(_score(m), 2),
        m.signature.layer == "signature",
        m.signature.priority,
        -m.order,
        -m.depth,
    )


def _signals(evidence: Evidence) -> dict[str, Cited]:
    """Every signal that ended the run or one of its processes, with the line that says so."""
    signals: dict[str, Cited] = {}
    status = evidence.exit
    stall = evidence.stall
    # a run trainwatch stopped for its stall ended by trainwatch's own signal: no cause of it
    if status is not None and not (stall is not None and stall.action == "stopped"):
        name = status.signal
        if name is None and status.code not in (None, 0) and not _chose_status(evidence):
            from trainwatch.diagnostics.knowledge.signals import signal_from_code

            name = signal_from_code(status.code)
            relayed = evidence.forwarded_signals
            if name is not None and relayed and name not in relayed:
                # a handler that chose its status (a shell's trap that exits 143 whatever came):
                # the signal trainwatch relayed to the run is the one that stopped it
                name = relayed[0]
        if name:
            signals[name] = _exit_cited(evidence)
    if evidence.log is not None:
        for signal, said, where in evidence.log.signal_lines():
            signals.setdefault(signal, Cited("log", said, where))
    if evidence.probe is not None and (status is None or status.code != 0):
        # A process of a run that failed died of a fatal signal (a forked worker's segfault, which
        # its parent only saw as a lost child): the probe's faulthandler recorded it.
        for fatal in evidence.probe.fatal:
            where = f"probe pid {fatal.pid}"
            signals.setdefault(
                fatal.signal, Cited("probe", f"{fatal.signal} in pid {fatal.pid}", where)
            )
    return signals


def _chose_status(evidence: Evidence) -> bool:
    """Did the program pick its exit status itself, `sys.exit(138)` as the probe saw it? Then a
    status above 128 is a number it chose (papermill's for a dead kernel), not a shell's report of
    a signal."""
    probe, status = evidence.probe, evidence.exit
    if probe is None or status is None:
        return False
    return any(
        c.thread is None
        and c.final.short_type == "SystemExit"
        and c.final.message.strip() == str(status.code)
        for c in probe.chains
    )


# ---- building the verdict ------------------------------------------------------------------------
def _from_match(
    best: Match,
    ranked: list[Match],
    cascades: list[Match],
    chains: tuple[ExceptionChain, ...],
    evidence: Evidence,
    knowledge: Knowledge | None,
) -> Verdict:
    sig = best.signature
    category, subtype = sig.category, sig.subtype
    confidence = _score(best)
    chain = best.chain
    if chain is not None and chain.is_error_line:
        chain = None  # a line of the log, cited as such: no exception was raised that we saw
    exception = (best.exception or chain.first) if chain is not None else None
    culprit = _culprit(best, chains, evidence)
    alternatives: list[Alternative] = []
    summary = _summary(sig.title, sig.explanation)
    advice = sig.advice
    recast = _recast_code_verdict(best, exception, culprit) or _recast_missing_sample(
        best, exception, culprit
    )
    if recast is not None:
        alternatives.append(Alternative(category, subtype, confidence * 0.8, summary))
        subtype, summary, ceiling = recast
        category = subtype.split("/", 1)[0]
        confidence = min(confidence, ceiling)
        if subtype == MISSING_SAMPLE_SUBTYPE:
            advice = _advice_of(knowledge, MISSING_SAMPLE_SIGNATURE) + advice
    evidence_cited = list(best.cited)
    for m in ranked:  # corroborating matches of the same category strengthen and are shown
        if m is not best and m.signature.category == category and m.signature.role == "root":
            # once a text: an exception's line cited by a line pattern where it stands and by an
            # exception pattern where its traceback starts is one fact
            said = {c.text for c in evidence_cited}
            evidence_cited.extend(c for c in m.cited if c.text not in said)
            confidence = min(0.98, confidence + 0.03)
    # a run that exited failing did not end well, whatever its closing words said (they step aside
    # from the roots in classify; nor are they offered as another reading)
    failed = evidence.exit is not None and evidence.exit.status != 0
    for m in ranked:
        if (
            m.signature.role == "root"
            and m.signature.category != category
            and not (failed and m.signature.category in GOOD_ENDINGS)
        ):
            alternatives.append(
                Alternative(
                    m.signature.category,
                    m.signature.subtype,
                    _score(m),
                    _summary(m.signature.title, m.signature.explanation),
                )
            )
    return Verdict(
        category=category,
        subtype=subtype,
        confidence=round(confidence, 3),
        summary=summary,
        signature=sig.id,
        alternatives=tuple(alternatives),
        evidence=tuple(evidence_cited[:8]),
        cascade=tuple(c for m in cascades if m is not best for c in m.cited)[:6],
        culprit=culprit,
        exception=exception,
        exception_chain=chain.exceptions if chain else (),
        advice=advice,
        doc_url=sig.doc,
    )


def _recast_missing_sample(
    best: Match, exception: RaisedException | None, culprit: Culprit | None
) -> tuple[str, str, float] | None:
    """A path that does not exist, met while a sample was read (a Dataset's `__getitem__`, a
    DataLoader worker): one sample's file missing from a list whose other files load, not a wrong
    data root or an unmounted file system (a real run, forty-ninth session: its 37th file of a
    folder whose first 36 had loaded, read as the environment's missing path)."""
    if best.signature.subtype != MISSING_PATH_SUBTYPE or exception is None:
        return None
    if exception.short_type != "FileNotFoundError" or not _raised_for_one_sample(best.chain):
        return None
    place = _reading_place(best.chain, culprit)
    return (
        MISSING_SAMPLE_SUBTYPE,
        f"A file the data names does not exist, met while a sample was read (in {place}): most "
        "likely a sample missing from the files its list or index names, possibly a data root "
        "that is wrong for every sample.",
        0.6,
    )


def _advice_of(knowledge: Knowledge | None, signature_id: str) -> tuple[str, ...]:
    """The advice of one signature of the knowledge the match came from, where a verdict recast
    to its cause needs it (none where that knowledge lacks it)."""
    if knowledge is None:
        return ()
    return next((s.advice for s in knowledge.signatures if s.id == signature_id), ())


def _raised_for_one_sample(chain: ExceptionChain | None) -> bool:
    """Was the error raised while one sample was fetched (below a Dataset's `__getitem__`, or in a
    DataLoader worker), not while a data pipeline was set up (a dataset's metadata read once in
    its constructor, where a missing file means a wrong root for all: dev SS102)?"""
    if chain is None:
        return False
    return _in_a_loader_worker(chain) or any(
        f.function in SAMPLE_FETCHES for e in chain.exceptions for f in e.frames
    )


def _in_a_loader_worker(chain: ExceptionChain) -> bool:
    """Was it raised inside a DataLoader worker (torch's wrapper of the worker's error says so)?"""
    return any("DataLoader worker" in e.message for e in chain.exceptions)


def _recast_code_verdict(
    best: Match, exception: RaisedException | None, culprit: Culprit | None
) -> tuple[str, str, float] | None:
    """A code verdict that the place or the words of its error make another category's first: its
    subtype, summary and highest confidence (the code reading stays as the alternative)."""
    if best.signature.category != "code":
        return None
    never_a_sample = exception is not None and (
        exception.short_type in NAMES_NOT_SAMPLES
        or CALL_SIGNATURE.search(exception.message)
        or _own_attribute_missing(exception)
    )
    if (
        (_generic_code(best) or best.signature.subtype == SHAPE_SUBTYPE)
        and not never_a_sample
        and not (best.signature.subtype == SHAPE_SUBTYPE and _own_collate(best.chain))
        and _raised_reading_data(best.chain, culprit)
    ):
        # A plain Python error, or shapes that do not fit (a record reshaped to the size the
        # others have), while loading a sample: usually the sample (a missing key, a bad row, an
        # image of another size, a record of another length).
        what = exception.short_type if exception else "An error"
        place = _reading_place(best.chain, culprit)
        return (
            "data/sample-error",
            f"{what} raised in the code that reads the data (in {place}): "
            "most likely a bad or unexpected sample or label, possibly a bug in that code.",
            0.7,
        )
    if exception is None:
        return None
    newer = _newer_syntax(exception) if best.signature.subtype == SYNTAX_SUBTYPE else None
    if newer is not None:
        return (
            "library/version-incompat",
            f"{exception.short_type} on a line that newer Pythons accept ({newer}): the program "
            "was written for a newer interpreter than "
            "the one that ran it (a wrong `python` on the PATH, an old virtual environment), more "
            "often than it holds a typo there.",
            0.6,
        )
    if EMPTY_SIZE.search(exception.message):
        return (
            "data/empty-sample",
            f"{exception.short_type} about a tensor or array of size 0: {EMPTY_SAMPLE_MEANS}",
            0.7,
        )
    if best.signature.subtype == GENERIC_CODE_SUBTYPE and _package_failed_on_its_own(
        exception, best.chain
    ):
        # Raised inside an installed package, the program's own frames (if any) doing no more
        # than importing one or loading a pretrained model with it: the package's (or its
        # command-line tool's) code failed, more often its release or the files it was given
        # than the program (in the dev corpus 5 such logs of 7 without an own frame were
        # library, 1 code, 1 data).
        return (
            "library/package-error",
            f"{exception.short_type} raised inside an installed package, where the program's "
            "own code did no more than start, import or load files with it: most likely a bug, "
            "a version mismatch of that package or files it cannot read (an incomplete model "
            "download), possibly a value the program gave it.",
            0.6,
        )
    return None


def _newer_syntax(exception: RaisedException) -> str | None:
    """The line a syntax error stopped on, when it holds syntax of Python 3.5 or later and the
    error is not one every Python makes alike (indentation) or worded as only Python 3.10 and
    later word it (such an interpreter knows every syntax NEWER_SYNTAX looks for)."""
    if exception.short_type in ("IndentationError", "TabError") or SAID_BY_A_NEW_PYTHON.search(
        exception.message
    ):
        return None
    line = next((f.code for f in reversed(exception.frames) if f.code), None)
    return line if line is not None and NEWER_SYNTAX.search(line) else None


def chains_of(evidence: Evidence) -> tuple[ExceptionChain, ...]:
    """The exception chains a verdict is judged on: the probe's first, then the log's."""
    return _probe_chains(evidence) + evidence.log_chains


def _by_empty_size(unknown: Verdict, line: str) -> Verdict | None:
    """An error no signature knows that names an empty tensor or array (EMPTY_SIZE): the sample's
    first, at the word layer's confident level (a fact of the message, not a leaning of words)."""
    if not EMPTY_SIZE.search(line):
        return None
    return replace(
        unknown,
        category="data",
        subtype="data/empty-sample",
        confidence=WORDS_CONFIDENT,
        summary=(
            f"{unknown.summary} It is about a tensor or array of size 0: {EMPTY_SAMPLE_MEANS}"
        ),
        advice=ADVICE.get("data", ()),
    )


def _by_reading_place(
    unknown: Verdict, chain: ExceptionChain, words: Verdict | None
) -> Verdict | None:
    """An error no signature or phrase knows, raised while a sample was read (a Dataset's
    `__getitem__`, a collate function, a DataLoader worker), whose words lean to the code or
    nowhere: the sample first, as a plain Python error there is (the torch call that a short or
    empty clip broke, a real run), at the word layer's confident level; the words' reading stays
    as the alternative. Words that lean elsewhere (memory, the environment) keep their reading."""
    exc = chain.final
    if chain.is_error_line or exc.short_type in NAMES_NOT_SAMPLES:
        return None
    if CALL_SIGNATURE.search(exc.message) or not _raised_reading_data(chain, unknown.culprit):
        return None
    if words is not None and words.category not in ("code", "data"):
        return None
    place = _reading_place(chain, unknown.culprit)
    return replace(
        unknown,
        category="data",
        subtype="data/sample-error",
        confidence=WORDS_CONFIDENT,
        summary=(
            f"{exc.short_type} raised in the code that reads the data (in {place}), which no "
            "known signature explains: most likely a bad or unexpected sample, possibly a bug "
            "in that code."
        ),
        advice=ADVICE.get("data", ()),
        alternatives=(
            (Alternative(words.category, words.subtype, WORDS_GUESS, words.summary),)
            if words is not None and words.category != "data"
            else ()
        ),
    )


def _by_its_words(unknown: Verdict, line: str | None) -> Verdict | None:
    """The third layer: an error no signature or phrase knows, judged by the category its words
    lean to in the development corpus (knowledge/words.py), at a confidence under the phrases'."""
    words = model()
    leaning = words.lean(line) if words is not None and line else None
    if leaning is None:
        return None
    return replace(
        unknown,
        category=leaning.category,
        subtype=f"{leaning.category}/error-words",
        confidence=words_confidence(leaning.share),
        summary=(
            f"{unknown.summary} Its words ({', '.join(leaning.words)}) lean to "
            f"{leaning.category}: in the failure reports trainwatch learnt from, errors with "
            "these words were most often of that kind."
        ),
        advice=ADVICE.get(leaning.category, ()),
    )


def words_confidence(share: float) -> float:
    """The confidence of a word-layer verdict whose category holds this share of the belief."""
    if share >= WORDS_SURE_FROM:
        return WORDS_CONFIDENT
    return WORDS_CONFIDENCE if share >= WORDS_LEAN_FROM else WORDS_GUESS


def _fallback(evidence: Evidence, chains: tuple[ExceptionChain, ...]) -> Verdict:
    """Nothing in the knowledge base fits: say what is known, from the exception or the exit."""
    status = evidence.exit
    if status is not None and status.signal in STOP_SIGNALS:
        return Verdict(
            "interrupted",
            f"interrupted/{status.signal.lower()}",
            0.9,
            f"The run was stopped by {status.signal}: a person, a scheduler or a container stop "
            "sent it.",
        )
    limited = _time_limited(evidence)
    if limited is not None:
        return limited
    chain = ending_chain(chains)
    if chain is not None:
        exc = chain.final
        frame = exc.deepest_user_frame() or _deepest_user(chain.exceptions)
        where = f" at {frame.file}:{frame.line}" if frame else ""
        from trainwatch.diagnostics.knowledge.matcher import cited_kind

        text = error_line(chains) or exc.type  # the line cited, and what the word layer reads
        if exc.short_type == "SystemExit" and chain.origin == "probe":
            return _exited_itself(exc, frame, where, _last_words(evidence))
        said = (
            f"The log ends on an error printed as a line, not raised as an exception ({exc.type}), "
            "which no known signature explains."
            if chain.is_error_line
            else f"The run raised {exc.short_type}{where}, which no known signature explains."
        )
        unknown = Verdict(
            "unknown",
            None,
            0.3,
            said,
            evidence=(Cited(cited_kind(chain), text, chain.where),),
            culprit=Culprit.from_frame(frame) if frame else None,
            exception=None if chain.is_error_line else chain.first,
            exception_chain=() if chain.is_error_line else chain.exceptions,
        )
        words = _by_its_words(unknown, text)
        return (
            _by_empty_size(unknown, text)
            or _by_reading_place(unknown, chain, words)
            or words
            or unknown
        )
    if status is None:
        if evidence.log is not None and evidence.log.lines == 0:
            # a job's output file that was never written to, or the wrong file: say so, rather
            # than "no error" of a log that holds nothing
            return Verdict(
                "unknown",
                None,
                0.2,
                "The log is empty: it holds no line to read (an output file the job never wrote "
                "to, another file than the run's, or a capture that failed).",
            )
        return Verdict(
            "unknown", None, 0.2, "The log shows no error and does not say how the run ended."
        )
    if status.code == 0:
        progress = evidence.progress
        seen = (
            f"its loop was last seen at {progress.stopped_at}, with no total to tell its end by"
            if progress is not None and progress.stopped_at
            else "it printed no progress, so the end of its loop was not seen"
        )
        ended_well = Verdict(
            "completed",
            None,
            EXITED_WELL,
            f"The run exited with status 0 and no error stopped it ({seen}).",
        )
        backgrounded = _backgrounded(evidence)
        if backgrounded is not None:
            return Verdict(
                "early-exit",
                "early-exit/backgrounded",
                0.8,
                "The command exited with status 0 while a program it had started in the "
                f"background was still running (pid {backgrounded.pid}: "
                f"`{_shown_argv(backgrounded.argv)}`): the command's end is the run's end, and "
                "trainwatch stopped what it left behind, so that program did not run to its end.",
                alternatives=(Alternative("completed", None, 0.3, ended_well.summary),),
                advice=(
                    "Run the training in the command's foreground (drop the `&` and `nohup`), or "
                    "end the script with `wait`, so that the command lasts as long as its "
                    "training.",
                ),
            )
        if _left_without_shutdown(evidence):
            return Verdict(
                "early-exit",
                "early-exit/skipped-shutdown",
                0.5,
                "The run exited with status 0, but its main Python process never reached "
                "Python's normal shutdown: something ended it at once (`os._exit(0)`, a library "
                "that exits from C), so its at-exit handlers did not run and output it had not "
                f"flushed was lost ({seen}).",
                alternatives=(Alternative("completed", None, 0.45, ended_well.summary),),
                advice=(
                    "Look for `os._exit` (or a library's exit) in the code the run took; with "
                    "`python -u` (or PYTHONUNBUFFERED=1) its output up to that point is kept.",
                ),
            )
        return ended_well
    if status.signal is not None:
        return Verdict("unknown", None, 0.3, f"Killed by {status.signal}; cause not established.")
    return Verdict(
        "unknown", None, 0.3, f"Exited with status {status.code}; cause not established."
    )


# A completed run whose thread died of a failure outside the program's code (a checkpoint thread
# on a full disk, an uploader out of memory): the work that thread did is lost, so the run is less
# surely well, and that failure is the alternative.
THREAD_FAILURE_COMPLETED = 0.75
# A run that printed tracebacks it went on from and finished: completed, a little less sure (the
# program judged them harmless, trainwatch cannot), their failure the alternative.
HANDLED_ERROR_COMPLETED = 0.8
# A tuner's end-of-run report that trials failed (Ray Tune's "Number of errored trials: 1",
# "Trial status: 2 TERMINATED | 1 ERROR", "Trials did not complete: [...]"): the tracebacks of those
# trials were the run's failures, whatever the driver did after.
TRIALS_FAILED = re.compile(
    r"Number of errored trials: [1-9]|Trials did not complete: \[|\| [1-9]\d* ERROR\b"
)
HANDLED_ERROR_ALTERNATIVE = 0.3
THREAD_FAILURE_ALTERNATIVE = 0.7


def _strongest_root(
    chains: tuple[ExceptionChain, ...], knowledge: Knowledge | None, log: LogFacts | None = None
) -> Match | None:
    """The strongest initiating failure the knowledge base reads in these chains alone (and in
    the log's lines, when given)."""
    return max(_roots(chains, knowledge, log), key=_rank, default=None)


def _roots(
    chains: tuple[ExceptionChain, ...], knowledge: Knowledge | None, log: LogFacts | None
) -> Iterator[Match]:
    """Every initiating failure the knowledge base reads in these chains (and the log's lines)."""
    if knowledge is None:
        from trainwatch.diagnostics.knowledge import default_knowledge

        knowledge = default_knowledge()
    return (m for m in knowledge.match(chains, log, {}) if m.signature.role == "root")


def _said_of_the_whole_run(evidence: Evidence, knowledge: Knowledge | None) -> bool:
    """Did a line the run printed on the way speak of the whole run (a signature's `whole_run`):
    Keras 3's `Your input ran out of data; interrupting training`, after which it draws each later
    epoch's bar to its total over the batches left; Lightning's `training_step` returning None,
    after which no step trains? No failure the run went on from, whatever the loop printed after
    it (forty-third session's real runs: `explain` said completed where `run` said early-exit; a
    Lightning fit that trained nothing was completed 97%)."""
    return any(m.signature.whole_run for m in _roots((), knowledge, evidence.log))


def _handled_alternatives(
    best: Match | None, alternatives: tuple[Alternative, ...]
) -> tuple[Alternative, ...]:
    """A completed verdict's alternatives, led by the failure it handled on the way (by the
    signature that reads it) unless that is no failure."""
    if best is None or best.signature.category in GOOD_ENDINGS:
        return alternatives
    sig = best.signature
    handled = Alternative(
        sig.category, sig.subtype, HANDLED_ERROR_ALTERNATIVE, f"Handled on the way: {sig.title}."
    )
    return (handled, *alternatives)


def _with_thread_failure(
    completed: Verdict, evidence: Evidence, knowledge: Knowledge | None
) -> Verdict:
    """The completed verdict, with the failure a dead thread's exception names by a signature
    (not the program's own mistake) as its alternative."""
    probe = evidence.probe
    threads = tuple(c for c in probe.chains if c.thread is not None) if probe else ()
    best = _strongest_root(threads, knowledge)
    if best is None or best.signature.category in ("code", *GOOD_ENDINGS):
        return completed
    sig = best.signature
    alt = Alternative(
        sig.category, sig.subtype, THREAD_FAILURE_ALTERNATIVE, f"In a thread: {sig.title}."
    )
    return replace(
        completed,
        confidence=min(completed.confidence, THREAD_FAILURE_COMPLETED),
        alternatives=(alt,) + completed.alternatives,
    )


def _waited_for_a_dead_thread(evidence: Evidence, knowledge: Knowledge | None) -> Verdict | None:
    """A run that hung after one of its threads died of an uncaught exception (a prefetch thread
    feeding a queue the loop then waits on forever): the thread's exception is the initiating
    failure, judged as if it had ended the process, and the hang its consequence (the
    alternative). None where no thread died or the run did not hang."""
    probe = evidence.probe
    if evidence.stall is None or probe is None:
        return None
    died = tuple(c for c in probe.chains if c.thread is not None)
    if not died or _main_thread_raised(probe):
        return None
    hung = classify(replace(evidence, probe=_without_thread_chains(probe)), knowledge)
    if hung.category != "hang":
        return None
    as_main = tuple(replace(c, thread=None) for c in died)
    # read as if the exception had ended the process: how the hang was ended is no part of it
    alone = replace(evidence, stall=None, exit=None, probe=replace(probe, chains=as_main))
    cause = classify(alone, knowledge)
    if cause.category in ("hang", "unknown", "interrupted", *GOOD_ENDINGS):
        return None
    thread = died[0].thread
    return replace(
        cause,
        summary=(
            f"A thread of the run ('{thread}') ended on an uncaught {died[0].final.short_type}, "
            "and the run then hung waiting for what it would have given (the hang is the "
            f"consequence, below). {cause.summary}"
        ),
        evidence=cause.evidence + tuple(c for c in hung.evidence if c.kind == "stall"),
        alternatives=(
            Alternative(hung.category, hung.subtype, min(0.5, hung.confidence), hung.summary),
        )
        + cause.alternatives,
    )


def _without_thread_chains(probe: ProbeFacts) -> ProbeFacts:
    """The probe's facts without the chains of threads that died (the process's own reading)."""
    return replace(probe, chains=tuple(c for c in probe.chains if c.thread is None))


def _main_thread_raised(probe: ProbeFacts) -> bool:
    """Did an exception (not a `sys.exit`) end a main thread of the run, as the probe saw, with no
    later attempt that went well (`ProbeFacts.failures_not_retried`)?"""
    return bool(probe.failures_not_retried())


def _without_thread_deaths(evidence: Evidence) -> Evidence | None:
    """The evidence of a run that exited 0 without the exceptions that ended only a thread (the
    probe saw each, and the log holds Python's copy of it): None where there are none. An uncaught
    exception ends its thread, not the process; a run that then went on to end well completed, and
    the report's notes say what the thread was doing when it died (live._thread_deaths)."""
    probe = evidence.probe
    if probe is None or evidence.exit is None or evidence.exit.code != 0:
        return None
    # The log's copy is known by its type or by its message's start: threads dying at once
    # interleave their lines, and either may be garbled (a message that begins with another
    # thread's frame, a type glued to another's, `OSErrorOSError`). In a run that exited 0, an
    # exception of that type the program printed and went on from explains its end no better.
    died = [c.final for c in probe.chains if c.thread is not None]
    if not died:
        return None
    types = {e.short_type for e in died}
    starts = {_message_start(e.message) for e in died} - {""}
    log = evidence.log
    if log is not None:
        log = replace(
            log,
            chains=tuple(
                c
                for c in log.chains
                if c.final.short_type not in types and _message_start(c.final.message) not in starts
            ),
        )
    return replace(evidence, probe=_without_thread_chains(probe), log=log)


def _ended_its_epochs(position: ProgressPosition) -> bool:
    """Did the loop reach the last of several epochs it counted?"""
    return bool(position.epochs and position.epochs > 1 and position.epoch == position.epochs)


def _ended_its_printed_steps(position: ProgressPosition) -> bool:
    """Did the loop's own printed lines (`step 2000/2000`, not a bar's frames) count its steps to
    their total? A real run's caught allocation failure at step 10 of 2000, the loop on to its
    last step and "training finished", read as the run's out-of-memory (forty-fourth session)."""
    return bool(
        position.unit != "batch"
        and position.steps
        and position.steps > 1
        and position.step == position.steps
    )


def _without_handled_tracebacks(evidence: Evidence) -> Evidence | None:
    """The evidence of a run without the tracebacks it printed and went on from (a program that
    logs an optional import's failure, or catches an out-of-memory and retries with a smaller
    batch, prints a traceback and finishes): None unless its loop reached its end, and either the
    run exited 0 with no exception ending its main thread as the probe saw, or, in a saved log,
    every traceback stands before the loop's last progress. Their error lines go with them."""
    probe = evidence.probe
    log = evidence.log
    progress = evidence.progress
    if log is None or progress is None or progress.finished is not True:
        return None
    last = progress.last_progress_line
    before = _printed_before(log.notable, last)
    if not log.chains and not before:
        return None  # no traceback, and no line before the loop's last progress to go on from
    if evidence.exit is None:
        # a saved log: every traceback stands before the loop's last progress, which reached its
        # last epoch of several, or the last of the steps its lines counted (the program went on
        # from each and finished). A bar alone at its
        # total is no proof: tqdm redraws its bar as a failed loop unwinds; nor is a loop whose
        # progress was printed once, at its end (rich's bar off a terminal draws only its last
        # frame): everything stands before it, and nothing shows the run went on from any of it
        position = progress.position
        if (
            last is None
            or progress.first_progress_line is last
            or any(c.line is None or c.line > last.number for c in log.chains)
            or any(line.number > last.number for line in log.process_end_lines())
            or not (_ended_its_epochs(position) or _ended_its_printed_steps(position))
            or any(_a_thread_died_of(c, log) for c in log.chains)
        ):
            return None
    elif (
        evidence.source != "run"
        or probe is None
        or not probe.loaded
        or evidence.exit.code != 0
        or _main_thread_raised(probe)
    ):
        return None
    if any(TRIALS_FAILED.search(line.text) for line in log.notable + log.tail):
        return None  # a tuner reported the trial it ran as failed: not handled, only survived
    said = {
        f"{name}: {_message_start(e.message)}"
        for c in log.chains
        for e in c.exceptions
        if e.message
        for name in (e.type, e.short_type)
    }
    # and the lines the run printed before its loop's last progress (in the same stream): what it
    # said of an error it went on from ("out of memory, retrying with batch size 1024")
    notable = tuple(
        line
        for line in log.notable
        if not any(line.text.strip().startswith(s) for s in said) and line not in before
    )
    if probe is not None and probe.chains:
        # the failures of attempts a later one retried (`_retried`) go with their tracebacks
        kept = tuple(
            c for c in probe.chains if c.thread is not None or c.final.short_type == "SystemExit"
        )
        probe = replace(probe, chains=kept)
    # and, in a saved log (one stream, its lines in order), the processes it says a signal ended
    # (a launcher's `failed (exitcode: -11)`) before the loop went on to its end: a restart went on
    # from them (a real torchrun job)
    if last is not None and evidence.exit is None:
        log = log.without_process_ends_before(last.number)
    return replace(evidence, log=replace(log, chains=(), notable=notable), probe=probe)


def _how_it_went_on(evidence: Evidence, what: str) -> str:
    """How a run went on from a failure it printed: a later start of the program (the probe saw
    it), a launcher's restart (a saved log says a process of it ended before the loop went on), or
    the program's own handling."""
    retried = _retried_starts(evidence)
    if retried is not None:
        return (
            f"the process that raised it ended, and the program was started {retried[0]} times "
            f"({retried[1]} ended on an exception); a later start went on to the end (a retry "
            "loop, a launcher's restart)"
        )
    if _restarted_in_the_log(evidence):
        return (
            "the log says a process of the run ended by a signal or failed before the loop went on "
            "to its end: a launcher's restart, most likely"
        )
    return f"the program handled {what}"


def _restarted_in_the_log(evidence: Evidence) -> bool:
    """Does a saved log say a process of the run ended before its loop went on (the handled
    reading keeps only such lines from before the loop's last progress)?"""
    return (
        evidence.exit is None
        and evidence.log is not None
        and bool(evidence.log.process_end_lines())
    )


def _printed_before(lines, last) -> tuple:
    """The lines printed before the loop's last progress, in its stream."""
    if last is None:
        return ()
    return tuple(line for line in lines if line.stream == last.stream and line.number < last.number)


def _with_handled_lines(
    completed: Verdict, evidence: Evidence, knowledge: Knowledge | None
) -> Verdict:
    """The completed verdict of a run that printed a failure's words and went on to its end (an
    allocation it caught, printed and did without): the line a signature reads as the cause of a
    failure is cited, and that failure is the alternative."""
    best = _strongest_root((), knowledge, evidence.log)
    if best is None or best.signature.category in GOOD_ENDINGS or not best.cited:
        if _restarted_in_the_log(evidence):
            return replace(
                completed, summary=f"{completed.summary} {_how_it_went_on(evidence, 'it')}."
            )
        return completed
    said = best.cited[0]
    sig = best.signature
    return replace(
        completed,
        summary=(
            f"{completed.summary} It printed a failure's words on the way ({said.source}: "
            f"{sig.title.lower()}) and went on: {_how_it_went_on(evidence, 'it')}."
        ),
        confidence=min(completed.confidence, HANDLED_ERROR_COMPLETED),
        evidence=completed.evidence + (Cited(said.kind, f"handled: {said.text}", said.source),),
        alternatives=_handled_alternatives(best, completed.alternatives),
    )


# Python's word above the traceback of a thread that died of its exception (threading.excepthook)
THREAD_DIED = re.compile(r"^Exception in thread \S.*:\s*$")


def _a_thread_died_of(chain: ExceptionChain, log) -> bool:
    """Is the traceback one of a thread that died of it (`Exception in thread ckpt-writer:` on the
    line above): not handled, whatever the rest of the run did."""
    above = next((line for line in log.tail if line.number == (chain.line or 0) - 1), None)
    return above is not None and THREAD_DIED.match(above.text) is not None


def _with_handled_errors(
    completed: Verdict, evidence: Evidence, knowledge: Knowledge | None
) -> Verdict:
    """The completed verdict of a run that printed tracebacks (or error lines) it went on from:
    they are cited, and the failure the first one names is the alternative."""
    chains = evidence.log.chains
    if not chains:
        return _with_handled_lines(completed, evidence, knowledge)
    first = chains[0]
    count = "a traceback" if len(chains) == 1 else f"{len(chains)} tracebacks"
    message = first.final.message.splitlines()[0] if first.final.message else ""
    text = f"{first.final.type}: {message}".strip()[:CITED_CHARS]
    cited = Cited("exception", f"handled: {text}", first.where)
    alternatives = _handled_alternatives(_strongest_root(chains, knowledge), completed.alternatives)
    went_on = _how_it_went_on(evidence, "it" if len(chains) == 1 else "them")
    return replace(
        completed,
        summary=(
            f"{completed.summary} It printed {count} on the way (first: "
            f"{first.final.short_type} at {first.where}) and went on: {went_on}."
        ),
        confidence=min(completed.confidence, HANDLED_ERROR_COMPLETED),
        evidence=completed.evidence + (cited,),
        alternatives=alternatives,
    )


def _retried_starts(evidence: Evidence) -> tuple[int, int] | None:
    """(starts, starts that ended on an exception) of the program whose uncaught exception a later
    start of it went on from (the probe's processes of the same command line, of the same rank):
    None where no process of the run died of one."""
    probe = evidence.probe
    if probe is None:
        return None
    died = [c for c in probe.chains if c.thread is None and c.final.short_type != "SystemExit"]
    failed = next((probe.process(c.pid) for c in died if probe.process(c.pid) is not None), None)
    if failed is None:
        return None
    starts = [
        p
        for p in probe.processes
        if not p.forked and p.argv == failed.argv and p.rank == failed.rank
    ]
    if len(starts) < 2:
        return None
    pids = {p.pid for p in starts}
    return len(starts), len({c.pid for c in died if c.pid in pids})


MESSAGE_START = 40  # characters of a message's first line that tell one exception from another


def _message_start(message: str) -> str:
    return message.splitlines()[0][:MESSAGE_START] if message else ""


def _time_limited(evidence: Evidence) -> Verdict | None:
    """The verdict for a run its time limiter stopped (`_time_limiter`)."""
    limiter = _time_limiter(evidence)
    inner = None if limiter is not None else _inner_time_limiter(evidence)
    if limiter is None and inner is None:
        return None
    status = evidence.exit.status
    if limiter is not None:
        said = f"The run was started under `{limiter}`, which stopped it"
    else:
        limiter = inner
        said = (
            f"A `{limiter}` inside the command (seen among the run's processes) stopped its "
            "program, and the command passed its status on"
        )
    return Verdict(
        "interrupted",
        "interrupted/time-limit",
        0.85 if inner is None else 0.75,
        f"{said} when its time limit ran out: `{limiter}` exits with status {status} when it had "
        "to stop the command.",
        evidence=(
            Cited("exit", f"{'' if inner else limiter + ' '}exit status {status}", "waitpid"),
        ),
        advice=(f"Give `{limiter}` a longer limit, or resume the run from its last checkpoint.",),
    )


def _inner_time_limiter(evidence: Evidence) -> str | None:
    """A time limiter the run's command started itself (a script's `timeout 600 python
    train.py`), seen among the run's processes, whose exit status for a stop (TIME_LIMIT_EXITS)
    the command ended with (forty-fourth session: such a script's 124 was unknown 30%)."""
    status, memory = evidence.exit, evidence.memory
    if status is None or status.code is None or memory is None:
        return None
    names = {p.name for sample in memory.samples + memory.tail for p in sample.processes[1:]}
    return next(
        (name for name, code in TIME_LIMIT_EXITS.items() if name in names and code == status.code),
        None,
    )


def _time_limiter(evidence: Evidence) -> str | None:
    """The command the run was started under that stopped it for its time limit, by the exit
    status that command gives for it (TIME_LIMIT_EXITS, TIME_LIMIT_KILLS)."""
    status, command = evidence.exit, evidence.command
    if status is None or not command:
        return None
    name = file_name(command[0])
    # (a death by a signal has no exit code, nor has a command without a time limit: no match)
    limit = TIME_LIMIT_EXITS.get(name)
    if limit is not None and limit == status.code:
        return name
    if name in TIME_LIMIT_KILLS and status.status == 128 + 9 and _kills(command, name):
        return name
    return None


def _kills(command: tuple[str, ...], name: str) -> bool:
    """Do the limiter's options (those before its duration) have it end with SIGKILL?"""
    signal_options, kill_options = TIME_LIMIT_KILLS[name]
    args = list(command[1:])
    while args and args[0].startswith("-") and args[0] != "--":
        option = args.pop(0)
        flag, _, attached = option.partition("=")
        if flag in kill_options or any(option.startswith(o) for o in kill_options if len(o) == 2):
            return True
        if flag in signal_options:
            value = attached or (args.pop(0) if args else "")
        elif option[:2] in signal_options and len(option) > 2:
            value = option[2:]  # `-sKILL`
        else:
            continue
        if value.upper() in KILL_NAMES:
            return True
    return False


def _probe_chains(evidence: Evidence) -> tuple[ExceptionChain, ...]:
    """The probe's exception chains, the one that explains the run first (a DataLoader worker's
    original exception before the main process's re-raise of it): recorded inside the processes,
    they are first-hand where the log is a copy, so they come before the log's."""
    probe = evidence.probe
    if probe is None:
        return ()
    primary = probe.primary_chain()
    if primary is None:
        return probe.chains
    return (primary,) + tuple(c for c in probe.chains if c is not primary)


# ---- helpers -------------------------------------------------------------------------------------
def _culprit(best: Match, chains: tuple[ExceptionChain, ...], evidence: Evidence) -> Culprit | None:
    if best.via == "signal":  # a fatal signal's verdict: where the native call was made first
        frame = _fatal_frame(evidence) or _raised_in_own_code(best, chains)
    else:
        frame = _remote_failure(best.chain) or _raised_in_own_code(best, chains)
        frame = frame or _fatal_frame(evidence)
    return Culprit.from_frame(frame) if frame else None


def _fatal_frame(evidence: Evidence) -> Frame | None:
    """The user's line that made the native call a fatal signal struck: recorded by the probe's
    faulthandler, or printed in the log (the last of them)."""
    frame = None
    if evidence.probe is not None:
        for fatal in evidence.probe.fatal:
            frame = fatal.deepest_user_frame() or frame
    if frame is None and evidence.log is not None:
        for fatal in evidence.log.fatal_errors:
            frame = deepest_user_frame(fatal.frames) or frame
    return frame


def _raised_in_own_code(best: Match, chains: tuple[ExceptionChain, ...]) -> Frame | None:
    """The program's own innermost frame under the matched exception (or its chain, or the last
    chain when the match was a line)."""
    if best.exception is not None:
        frame = best.exception.deepest_user_frame()
        if frame is None and best.chain is not None:
            frame = _deepest_user(best.chain.exceptions)
        return frame
    return _deepest_user(chains[-1].exceptions) if chains else None


def _remote_failure(chain: ExceptionChain | None) -> Frame | None:
    """The line of the program's own code where a worker process failed, when the exception came
    back from one (a multiprocessing pool's or a process pool executor's RemoteTraceback): the
    parent's frames show only the call that waited for the result (`pool.map(...)`)."""
    if chain is None:
        return None
    for exc in chain.exceptions:
        if exc.type.endswith(REMOTE_TRACEBACK) and (frame := exc.deepest_user_frame()):
            return frame
    return None


def _deepest_user(exceptions: tuple[RaisedException, ...]) -> Frame | None:
    for exc in exceptions:  # the first raised is the initiating one: its frames point closest
        frame = exc.deepest_user_frame()
        if frame is not None:
            return frame
    return None


def _generic_code(best: Match) -> bool:
    """Does the verdict rest on a plain Python error or on a code phrase family (shapes that do not
    fit, in any framework's words), not on a signature that names the code's own mistake?"""
    sig = best.signature
    return sig.subtype == GENERIC_CODE_SUBTYPE or (sig.layer == "phrase" and sig.category == "code")


# `'Toy' object has no attribute 'augument'`: the attribute a message says is missing
MISSING_ATTRIBUTE = re.compile(r"has no attribute '(?P<name>\w+)'")


def _own_attribute_missing(exception: RaisedException) -> bool:
    """An AttributeError for an attribute the raising line asks of `self` (`self.augument(x)`): a
    typo or a missing assignment in the program's own class, whichever sample it was reading (a
    real run's dataset method, read as a bad sample)."""
    if exception.short_type != "AttributeError":
        return False
    missing = MISSING_ATTRIBUTE.search(exception.message)
    code = exception.frames[-1].code if exception.frames else None
    return bool(missing and code and f"self.{missing.group('name')}" in code)


def _own_collate(chain: ExceptionChain | None) -> bool:
    """Was the failing collate function the program's own? Its shapes that do not fit are its
    own padding or stacking (a real run's `out[k, :len(s)] = s` sized by the first sample, another's
    `pad_sequence` over the wrong axis), not a sample: the default collate's words for unequal
    samples are their own signature."""
    from trainwatch.diagnostics.judge.culprits import collate_frame

    frame = collate_frame(chain.exceptions) if chain is not None else None
    return frame is not None and frame.user


def _reading_place(chain: ExceptionChain | None, culprit: Culprit | None) -> str:
    """Where in the reading of the data the error was raised, as a summary names it: the collate
    function that puts the samples of a batch together (a sample of another kind than the others,
    `None` among them), else the culprit's function. A script's top level (`<module>`) is the loop
    that asked for the batch, not the reading: then "the dataset"."""
    from trainwatch.diagnostics.judge.culprits import collate_frame

    in_own_reader = culprit is not None and culprit.function in DATA_FUNCTIONS
    frame = collate_frame(chain.exceptions) if chain is not None else None
    if frame is not None and not in_own_reader:
        return f"{frame.function}, which puts a batch's samples together"
    if culprit is not None and culprit.function != "<module>":
        return culprit.function
    return "the dataset"


# The entry of a pool's worker process: the outermost frames of a traceback it sends back.
_POOL_WORKER = re.compile(
    r"multiprocess(?:ing)?[/\\]pool\.py$|concurrent[/\\]futures[/\\]process\.py$"
)


def _raised_reading_data(chain: ExceptionChain | None, culprit: Culprit | None) -> bool:
    if culprit is not None and culprit.function in DATA_FUNCTIONS:
        return True
    if chain is None:
        return False
    if any(f.code and WORKER_INIT_CALL.match(f.code) for e in chain.exceptions for f in e.frames):
        return False  # a worker's `worker_init_fn`: it sets the worker up, reads no sample
    from trainwatch.diagnostics.judge.culprits import collate_frame

    if collate_frame(chain.exceptions) is not None:
        return True  # raised inside a collate function: the framework's own, under the user's call
    if _in_a_loader_worker(chain):
        return True
    # ... or below a data loader's own step to its next batch, however deep (grain's loader runs
    # a record's transforms in place: a real run's JSONDecodeError three frames inside `json`)
    if any(
        f.function in LOADER_STEPS and DATA_LOADER_MODULE.search(_module_name(f.file))
        for f in chain.exceptions[-1].frames[:-1]
    ):
        return True
    frames = chain.exceptions[-1].frames[-DATA_READING_DEPTH:]
    # a pool's worker failed (a `Dataset.map(num_proc=2)` function, a `Pool.map` loader): its own
    # frames are those of the exception the parent re-raised from (the RemoteTraceback's, printed
    # as the first traceback of the chain), not the parent's wait for the result
    remote = chain.exceptions[0]
    if len(chain.exceptions) > 1 and (
        remote.type.endswith(REMOTE_TRACEBACK)
        or any(_POOL_WORKER.search(f.file) for f in remote.frames[:2])
    ):
        frames += remote.frames[-DATA_READING_DEPTH:]
    return any(
        DATA_READING_NAMES.search(f.function)
        or (
            DATA_READING_NAMES.search(_module_name(f.file))
            and (f.user or f.function not in LIBRARY_DATA_SETUP)
        )
        or (f.user and OWN_LABEL_READING.search(f.function))
        or LABEL_READING.search(f.function)
        # the program's own sample loading a call or two above (`__getitem__` -> `pull_item`), or a
        # module of its own data folder
        or (
            f.user
            and (f.function in DATA_FUNCTIONS or DATA_PACKAGE.search(forward_slashes(f.file)))
        )
        for f in frames
    )


def _package_failed_on_its_own(exception: RaisedException, chain: ExceptionChain | None) -> bool:
    """Was the exception raised in an installed package, with no frame of the program's own in
    its traceback (nor in those of the exceptions chained to it: a KeyError inside a package's
    `__getattr__` re-raised as the AttributeError whose traceback holds the program's line), or
    with the program's deepest frame an `import` statement or a pretrained model's loading (its
    code had done nothing but import the package, or hand it files to read)?"""
    frames = exception.frames
    if not frames or not in_installed_package(frames[-1].file):
        return False
    own = exception.deepest_user_frame()
    if own is None and chain is not None:
        own = _deepest_user(chain.exceptions)
    return own is None or bool(own.code and IMPORT_OR_PRETRAINED_LOAD.match(own.code))


# `import x`, `import x as y`, `from x import y`, and `X.from_pretrained(...)` (a frame's source
# line, as a traceback shows it)
IMPORT_OR_PRETRAINED_LOAD = re.compile(
    r"(?:from\s+[\w.]+\s+)?import\s+[\w*(]|(?:[\w.]+\s*=\s*)?[\w.]+\.from_pretrained\("
)


def _module_name(path: str) -> str:
    """`/srv/proj/training/dataset.py` -> `dataset`."""
    return file_name(path).removesuffix(".py")


def _summary(title: str, explanation: str) -> str:
    first = explanation.split(". ")[0].rstrip(".")
    return f"{title}: {first}." if first else f"{title}."


def _exit_cited(evidence: Evidence) -> Cited | None:
    """The exit status, cited where it was read: waitpid's for a live run, the line a saved log
    ends on for a log that records it (an IDE's or script(1)'s record)."""
    status = evidence.exit
    if status is None:
        return None
    said = evidence.log.run_status if evidence.log is not None else None
    if evidence.source == "log" and said is not None:
        return Cited("exit", said.line.text.strip()[:CITED_CHARS], said.line.where)
    return Cited("exit", _describe_exit(status.code, status.signal), "waitpid")


def _describe_exit(code: int | None, signal: str | None) -> str:
    return f"killed by {signal}" if signal else f"exit status {code}"
