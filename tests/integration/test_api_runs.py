"""The Python API in real interpreters: what `import trainwatch` costs, a watched training loop,
and the HTML report in a real Jupyter kernel."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import FIXTURE_LOGS, SCRIPTS, needs

HEAVY = ("torch", "typer", "rich", "click", "numpy", "IPython")


def _python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )


def test_import_trainwatch_loads_nothing_heavy():
    done = _python(
        "import sys, trainwatch\n"
        "before = sorted(m for m in sys.modules if m.split('.')[0] in {!r})\n"
        "trainwatch.explain({!r})\n"
        "after = sorted(m for m in sys.modules if m.split('.')[0] in {!r})\n"
        "print(before, after)".format(
            HEAVY, str(FIXTURE_LOGS / "collate_shape_mismatch.log"), HEAVY
        )
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] []"  # nor does explain(): the library needs no terminal


def test_diagnose_a_shape_error_from_torch():
    # a real torch exception, in an interpreter of its own (importing torch costs the unit tests
    # seconds they do not have)
    needs("torch")
    done = _python(
        "import torch, trainwatch\n"
        "try:\n"
        "    torch.zeros(2, 3) @ torch.zeros(4, 5)\n"
        "except RuntimeError as exc:\n"
        "    diagnosis = trainwatch.diagnose(exc)\n"
        "print(diagnosis.verdict.subtype, diagnosis.to_dict()['exception']['type'])"
    )
    assert done.returncode == 0, done.stderr
    subtype, kind = done.stdout.split()
    assert "shape" in subtype and kind == "RuntimeError", done.stdout


def test_a_watched_training_loop_that_fails(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "api_watch.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 1  # the block's exception went on, as unwatched
    err = done.stderr
    report, _, traceback = err.partition("Traceback (most recent call last)")
    assert "trainwatch report" in report and "mat1 and mat2 shapes" in traceback
    assert "stopped at epoch 2/2" in report
    source = (SCRIPTS / "api_watch.py").read_text().splitlines()
    culprit = next(n for n, line in enumerate(source, 1) if "model(x)" in line)
    assert f"api_watch.py:{culprit}" in report  # the culprit: the user's line, not torch's
    assert "loss" in report and "memory peak" in report
    assert "not reached" not in err
    # the output saved and explained: the program's own report is passed over, the traceback
    # after it read (it was taken for the output's end, and the run for a silent hang)
    import trainwatch

    saved = trainwatch.explain(err)
    assert (saved.verdict.category, saved.verdict.subtype) == ("code", "code/shape-mismatch")
    assert any("passed over" in note for note in saved.evidence.notes)


def test_the_report_is_html_in_a_jupyter_kernel():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    needs("ipykernel")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import trainwatch\n"
            "with trainwatch.watch():\n"
            "    print('epoch 1/3 step 2/10 loss 0.5')\n"
            "    {}['missing']"
        )
    ]
    client = nbclient.NotebookClient(notebook, timeout=60, kernel_name="python3", allow_errors=True)
    client.execute()
    outputs = notebook.cells[0].outputs
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert len(html) == 1 and html[0].startswith("<iframe srcdoc=")
    assert "KeyError" in html[0] and "code/python-error" in html[0]
    assert [o["ename"] for o in outputs if o["output_type"] == "error"] == ["KeyError"]
    assert any("epoch 1/3 step 2/10" in o.get("text", "") for o in outputs)
