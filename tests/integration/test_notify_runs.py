"""Notifications and --on-exit for real: `trainwatch run` posting to a local HTTP server, in every
format, from the command line, the environment and the config file; failures that change nothing."""

from __future__ import annotations

import base64
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import SCRIPTS, TRAINWATCH, read_report, trainwatch, trainwatch_env

STEPS = str(SCRIPTS / "notify_steps.py")


class Webhook:
    """A local webhook: records each POST (path, headers, JSON body); /500 answers 500, /hang
    answers only when the test ends."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.release = threading.Event()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                if self.path.startswith("/hang"):
                    hook.release.wait(30)
                try:
                    self.send_response(500 if self.path.startswith("/500") else 200)
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a client that gave up waiting (the notifier's timeout) reads no answer

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # polled every 20 ms (the default 0.5 s made shutting it down half a second per test)
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def bodies(self, path: str) -> list[dict]:
        return [p["body"] for p in self.posts if p["path"] == path]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def _run(*args: str, env: dict | None = None, tmp_path: Path | None = None):
    """trainwatch run with no config file of the user's in the way."""
    base = {"XDG_CONFIG_HOME": str(tmp_path or "/nonexistent"), "NO_PROXY": "127.0.0.1"}
    return trainwatch("run", *args, env={**base, **(env or {})}, timeout=60)


def test_a_webhook_with_a_user_and_password_is_posted_with_basic_authentication(webhook, tmp_path):
    # urllib took `user:pass@host` for a host name: such a webhook was never reached
    host = webhook.url.removeprefix("http://")
    result = _run(
        "--notify", f"http://bot:p%40ss@{host}/guarded", "--", sys.executable, "-c", "pass",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0 and b"failed" not in result.stderr
    (post,) = [p for p in webhook.posts if p["path"] == "/guarded"]
    assert post["headers"]["Authorization"] == "Basic " + base64.b64encode(b"bot:p@ss").decode()
    assert b"p%40ss" not in result.stderr and b"p@ss" not in result.stderr


def test_the_end_is_posted_with_the_verdict_and_a_redacted_command(webhook, tmp_path):
    result = _run(
        "--notify",
        f"{webhook.url}/hook/SECRET",
        "--json",
        str(tmp_path / "r.json"),
        STEPS,
        "0",
        "fail",
        "--hf-token",
        "hf_abcdefghijklmnopqrstuvwxyz012345",
        tmp_path=tmp_path,
    )
    assert result.returncode == 1  # the program's own status
    (end,) = webhook.bodies("/hook/SECRET")
    report = read_report(tmp_path / "r.json")
    assert end["event"] == "end"
    assert end["verdict"]["category"] == report["verdict"]["category"] == "code"
    assert end["verdict"]["confidence"] == report["verdict"]["confidence"]
    assert end["verdict"]["summary"] == report["verdict"]["summary"]
    assert end["exit_status"] == 1 and end["exit"]["code"] == 1
    assert end["duration_s"] > 0 and end["host"]
    assert end["report"] == str(tmp_path / "r.json")
    assert "hf_abcdefghij" not in json.dumps(end)
    assert "[REDACTED]" in end["command"]
    assert end["title"].startswith("trainwatch: ✗ code/")
    assert "ValueError: the batch had no labels" in end["text"]
    assert "What to do:" in end["text"] and "http" not in end["text"]
    assert webhook.posts[0]["headers"]["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("fmt", ["slack", "discord", "teams"])
def test_each_service_gets_its_own_shape(webhook, fmt, tmp_path):
    result = _run(
        "--notify", f"{webhook.url}/{fmt}", "--notify-format", fmt, STEPS, tmp_path=tmp_path
    )
    assert result.returncode == 0
    (body,) = webhook.bodies(f"/{fmt}")
    if fmt == "slack":
        assert set(body) == {"text"}
        assert body["text"].startswith("*trainwatch: ✓ completed")
        assert "```" in body["text"]
    elif fmt == "discord":
        assert body["allowed_mentions"] == {"parse": []}
        assert (
            body["content"].startswith("**trainwatch: ✓ completed") and len(body["content"]) <= 2000
        )
    else:
        (attachment,) = body["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        blocks = attachment["content"]["body"]
        assert blocks[0]["text"].startswith("trainwatch: ✓ completed")
        assert any("stopped at step 8/8" in b["text"] for b in blocks)


def test_urls_come_from_the_environment_and_the_config_file_too(webhook, tmp_path):
    config = tmp_path / "trainwatch" / "config.toml"
    config.parent.mkdir()
    config.write_text(f'[notify]\nurl = ["{webhook.url}/config"]\nformat = "plain"\n')
    result = _run(STEPS, env={"TRAINWATCH_NOTIFY": f"{webhook.url}/env"}, tmp_path=tmp_path)
    assert result.returncode == 0
    assert [b["event"] for b in webhook.bodies("/env")] == ["end"]
    assert [b["event"] for b in webhook.bodies("/config")] == ["end"]


def test_the_first_nan_is_posted_while_the_run_goes_on(webhook, tmp_path):
    result = _run(
        "--notify", f"{webhook.url}/hook", "--notify-on", "nan", STEPS, "3", tmp_path=tmp_path
    )
    assert result.returncode == 0
    events = webhook.bodies("/hook")
    assert [b["event"] for b in events] == ["nan", "end"]
    nan = events[0]
    assert nan["summary"] == "The loss became NaN at step 3/8."
    assert nan["line"] == "step 3/8 loss=nan" and nan["stopping"] is False
    assert events[1]["verdict"]["category"] == "numerical"


def test_a_stall_is_posted_before_the_run_is_stopped(webhook, tmp_path):
    result = _run(
        "--notify",
        f"{webhook.url}/hook",
        "--notify-on",
        "stall",
        "--stall-timeout",
        "1",
        str(SCRIPTS / "probe_sleep.py"),
        tmp_path=tmp_path,
    )
    events = webhook.bodies("/hook")
    assert [b["event"] for b in events] == ["stall", "end"]
    assert events[0]["summary"].startswith("No output and no progress for")
    assert events[0]["stopping"] is True
    assert events[1]["verdict"]["category"] == "hang"
    assert result.returncode == -15  # the stall watcher's SIGTERM


def test_failed_deliveries_are_one_warning_each_and_change_no_status(webhook, tmp_path):
    config = tmp_path / "trainwatch" / "config.toml"
    config.parent.mkdir()
    config.write_text("[notify]\ntimeout = 1\n")
    closed = "http://127.0.0.1:9/refused/SECRET"  # the discard port: nothing listens there
    result = _run(
        "--notify",
        f"{webhook.url}/500/SECRET",
        "--notify",
        f"{webhook.url}/hang/SECRET",
        "--notify",
        closed,
        STEPS,
        tmp_path=tmp_path,
    )
    assert result.returncode == 0
    stderr = result.stderr.decode()
    warnings = [line for line in stderr.splitlines() if "notification to" in line]
    assert len(warnings) == 3, stderr
    assert all(
        w.startswith("trainwatch: warning: notification to http://127.0.0.1:") for w in warnings
    )
    assert any("HTTP 500" in w for w in warnings)
    assert any("no answer within 1 s" in w for w in warnings)
    assert "SECRET" not in stderr  # a webhook's path is its secret
    assert "Traceback" not in stderr


def test_bad_notify_values_are_usage_errors_before_anything_runs(tmp_path):
    marker = tmp_path / "ran"
    for args in (("--notify", "ftp://example.org/x"), ("--notify-on", "epoch")):
        result = _run(*args, "--", "touch", str(marker), tmp_path=tmp_path)
        assert result.returncode == 2
        assert result.stderr.decode().startswith("trainwatch: error: ")
    assert not marker.exists()


def test_on_exit_gets_the_report_and_the_verdict(tmp_path):
    out = tmp_path / "seen"
    command = (
        f'cp "$TRAINWATCH_REPORT" {out}.json; echo "$TRAINWATCH_REPORT" > {out}.path; '
        f'echo "$TRAINWATCH_VERDICT $TRAINWATCH_EXIT_STATUS" > {out}.txt; echo hook says hi'
    )
    result = _run("--on-exit", command, STEPS, "0", "fail", tmp_path=tmp_path)
    assert result.returncode == 1
    report = read_report(tmp_path / "seen.json")
    assert report["verdict"]["category"] == "code"
    label = report["verdict"]["subtype"] or "code"
    assert (tmp_path / "seen.txt").read_text() == f"{label} 1\n"
    # no --json: a private report was written for the command, and removed after it
    assert not Path((tmp_path / "seen.path").read_text().strip()).exists()
    assert b"hook says hi" in result.stderr and b"hook says hi" not in result.stdout


def test_a_failing_on_exit_is_a_warning(tmp_path):
    result = _run(
        "--on-exit", "exit 7", "--json", str(tmp_path / "r.json"), STEPS, tmp_path=tmp_path
    )
    assert result.returncode == 0
    assert b"trainwatch: warning: --on-exit: the command exited 7" in result.stderr


def test_on_exit_from_the_config_file_sees_the_json_report_asked_for(tmp_path):
    config = tmp_path / "trainwatch" / "config.toml"
    config.parent.mkdir()
    config.write_text(f"[notify]\non_exit = 'echo \"$TRAINWATCH_REPORT\" > {tmp_path}/path'\n")
    report = tmp_path / "r.json"
    result = _run("--json", str(report), STEPS, tmp_path=tmp_path)
    assert result.returncode == 0
    assert (tmp_path / "path").read_text().strip() == str(report)


def test_a_ctrl_c_during_the_exit_command_stops_it_and_keeps_the_run_s_status(tmp_path):
    # the terminal's Ctrl-C reaches trainwatch's process group; the command runs in its own session
    proc = subprocess.Popen(
        [TRAINWATCH, "run", "-q", "--on-exit", "sleep 30", "--", "sh", "-c", "exit 3"],
        env=trainwatch_env(),
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    time.sleep(2.0)
    os.killpg(proc.pid, signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert time.monotonic() - started < 10
    assert b"--on-exit: the command was killed" in err
