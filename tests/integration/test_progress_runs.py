"""Progress and loss tracking on real output formats, the wait classifier, and the quiet-stop
verdicts.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time

from tqdm import tqdm

from trainwatch.diagnostics.evidence import Evidence, Frame, LogLine
from trainwatch.diagnostics.judge.quiet import judge_quiet
from trainwatch.diagnostics.read.progress import ProgressTracker
from trainwatch.diagnostics.watch.stall import wait_from_wchan

from conftest import CORPUS_LOGS


def track(text: str):
    tracker = ProgressTracker()
    for number, line in enumerate(text.split("\n"), 1):
        tracker.feed(LogLine(number, line))
    return tracker.finish()


def tqdm_output(loops) -> str:
    """What real tqdm writes (to a pipe: `\\r`-separated updates), for a list of (desc, total,
    stop_at).
    """
    out = io.StringIO()
    for desc, total, stop in loops:
        bar = tqdm(range(total), desc=desc, file=out, mininterval=0, ascii=False)
        for i in bar:
            if i == stop:
                break
        bar.close()
    return out.getvalue()


def corpus(case: str) -> str:
    return (CORPUS_LOGS / f"{case}.log").read_text(errors="replace")


# ---- progress ------------------------------------------------------------------------------------


def frame(file, function, code=None, user=False):
    return Frame(file, 1, function, code, user)


def test_wchan_of_a_sleeping_process():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        found = wait_from_wchan(child.pid)
        assert found is not None and found[0] == "sleep" and found[1].startswith("kernel: ")
    finally:
        child.kill()
        child.wait()


# ---- verdicts from saved logs --------------------------------------------------------------------


def judge_log(case: str):
    from trainwatch.diagnostics.read.logparse import LogParser

    tracker, parser = ProgressTracker(), LogParser()
    for number, text in enumerate(corpus(case).splitlines(), 1):
        line = LogLine(number, text)
        tracker.feed(line)
        parser.feed(line)
    return judge_quiet(Evidence(source="log", log=parser.finish(), progress=tracker.finish()))
