"""trainwatch in CI: GitHub annotations and step summaries, JUnit XML, --fail-on exit codes, colour
and width.
"""

from __future__ import annotations

from trainwatch.cli.console import CI_WIDTH, console_settings
from trainwatch.cli.reports.github import _data, _property, workspace_path

from conftest import ROOT, SCRIPTS

CI_TRAIN = str(SCRIPTS / "ci_train.py")
GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(ROOT)}
NO_CI = {"GITHUB_ACTIONS": "", "NO_COLOR": "", "FORCE_COLOR": "", "COLUMNS": ""}


def test_workflow_command_escaping_and_workspace_paths(tmp_path):
    assert _data("50%\r\nnext") == "50%25%0D%0Anext"
    assert _property("a: b, c") == "a%3A b%2C c"
    inside = tmp_path / "src" / "train.py"
    assert workspace_path(str(inside), str(tmp_path)) == "src/train.py"
    assert workspace_path("/elsewhere/train.py", str(tmp_path)) is None
    assert workspace_path("<string>", str(tmp_path)) is None


def test_colour_and_width_rules():
    assert console_settings({}, tty=False)["color_system"] is None
    assert console_settings({}, tty=False)["width"] == CI_WIDTH
    assert console_settings({}, tty=True)["color_system"] == "auto"
    assert console_settings({"FORCE_COLOR": "1"}, tty=False)["color_system"] == "auto"
    assert console_settings({"FORCE_COLOR": "0"}, tty=False)["color_system"] is None
    assert console_settings({"NO_COLOR": "1", "FORCE_COLOR": "1"}, tty=True)["color_system"] is None
    assert console_settings({"TERM": "dumb"}, tty=True)["color_system"] is None
    assert console_settings({"COLUMNS": "72"}, tty=False)["width"] == 72
