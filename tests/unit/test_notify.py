"""Notifications without a network: the settings' sources, each service's message shape, and the
messages built from a report's outline."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from trainwatch.cli.notify.config import load_settings, parse_events, shown_url
from trainwatch.cli.notify.formats import Message, detect_format, payload
from trainwatch.cli.notify.sender import LiveListener, Notifier
from trainwatch.cli.reports import Delivered
from trainwatch.cli.reports.outline import outline
from trainwatch.diagnostics.errors import UsageError
from trainwatch.diagnostics.evidence import Evidence, ExitStatus
from trainwatch.diagnostics.verdict import Cited, Culprit, Diagnosis, Verdict
from trainwatch.diagnostics.watch.alerts import LiveEvent


def _options(**given):
    base = {"notify": (), "notify_format": None, "notify_on": None, "on_exit": None}
    return SimpleNamespace(**{**base, **given})


def _settings(tmp_path, config: str | None = None, env: dict | None = None, **given):
    if config is not None:
        path = tmp_path / "trainwatch" / "config.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(config)
    warnings: list[str] = []
    settings = load_settings(
        _options(**given), {"XDG_CONFIG_HOME": str(tmp_path), **(env or {})}, warnings.append
    )
    return settings, warnings


@pytest.mark.parametrize(
    ("url", "fmt"),
    [
        ("https://hooks.slack.com/services/T0/B0/xyz", "slack"),
        ("https://discord.com/api/webhooks/123/abc", "discord"),
        ("https://discordapp.com/api/webhooks/123/abc", "discord"),
        ("https://discord.com/channels/1/2", "plain"),
        ("https://contoso.webhook.office.com/webhookb2/abc", "teams"),
        ("https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers", "teams"),
        ("https://ntfy.sh/my-runs", "plain"),
        ("http://127.0.0.1:8000/hook", "plain"),
    ],
)
def test_the_format_is_told_from_the_url(url, fmt):
    assert detect_format(url) == fmt


def test_settings_merge_the_command_line_the_environment_and_the_config_file(tmp_path):
    settings, warnings = _settings(
        tmp_path,
        config='[notify]\nurl = "https://c.example/h"\non = ["stall"]\nformat = "slack"\n'
        "on_exit = 'echo done'\ntimeout = 3\n",
        env={"TRAINWATCH_NOTIFY": "https://e.example/1, https://e.example/2 https://c.example/h"},
        notify=("https://a.example/h",),
        notify_on="nan",
    )
    assert settings.urls == (
        "https://a.example/h",
        "https://e.example/1",
        "https://e.example/2",
        "https://c.example/h",
    )
    assert settings.events == {"stall", "nan"}
    assert settings.format == "slack" and settings.on_exit == "echo done"
    assert settings.timeout == 3.0 and warnings == []


def test_the_command_line_wins_over_the_config_file(tmp_path):
    settings, _ = _settings(
        tmp_path,
        config="[notify]\nformat = 'slack'\non_exit = 'a'\n",
        notify_format="teams",
        on_exit="b",
    )
    assert (settings.format, settings.on_exit) == ("teams", "b")


def test_bad_command_line_values_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="not an http"):
        _settings(tmp_path, notify=("hooks.slack.com/services/x",))
    with pytest.raises(UsageError, match="unknown event 'epoch'"):
        _settings(tmp_path, notify_on="nan,epoch")
    assert parse_events("stall, nan", "--notify-on") == ("stall", "nan")


def test_bad_values_elsewhere_are_warnings_and_the_rest_still_applies(tmp_path):
    settings, warnings = _settings(
        tmp_path,
        config="[notify]\nurl = ['ftp://x/y', 'https://ok.example/h']\nformat = 'pager'\n"
        "colour = 1\ntimeout = 0\non = ['bell']\n",
        env={"TRAINWATCH_NOTIFY": "not-a-url"},
    )
    assert settings.urls == ("https://ok.example/h",)
    assert settings.format == "auto" and settings.timeout == 10.0
    text = "\n".join(warnings)
    assert "$TRAINWATCH_NOTIFY: not an http(s) URL" in text
    assert "notify.url: not an http(s) URL" in text
    assert "notify.format must be one of" in text
    assert "unknown key(s) in [notify]: colour" in text
    assert "notify.timeout" in text and "notify.on" in text


@pytest.mark.parametrize(
    "line, key",
    [("url = 5", "url"), ("url = ['https://a.example', 3]", "url"), ("on = 3", "on"),
     ("on_exit = 7", "on_exit"), ("on_exit = ['echo', 'x']", "on_exit")],
)  # fmt: skip
def test_a_value_of_the_wrong_type_in_the_config_file_is_one_warning(tmp_path, line, key):
    # (a number where a string goes once stopped every run with trainwatch's own TypeError, and
    # `on_exit = 7` ran the command `7`)
    settings, warnings = _settings(tmp_path, config=f"[notify]\n{line}\n", notify_on="nan")
    assert settings.urls == () and settings.on_exit is None and settings.events == {"nan"}
    assert len(warnings) == 1 and f"notify.{key} must be a string" in warnings[0]


def test_a_config_file_that_is_not_toml_is_one_warning(tmp_path):
    settings, warnings = _settings(tmp_path, config="[notify\nurl=", notify=("https://a.example",))
    assert settings.urls == ("https://a.example",)
    assert len(warnings) == 1 and "is not valid TOML" in warnings[0]


def test_a_webhook_is_shown_without_its_secret_path():
    shown = shown_url("https://hooks.slack.com/services/T0/B0/s3cr3t?x=1")
    assert shown == "https://hooks.slack.com/…"
    assert shown_url("http://user:pw@127.0.0.1:8080/a/b") == "http://127.0.0.1:8080/…"


MESSAGE = Message("end", "trainwatch: ✗ code · 90% sure · exit 1", "line & <b>\n```x```", {"a": 1})


def test_slack_escapes_its_three_characters_and_keeps_the_text_in_a_code_block():
    body = payload("slack", MESSAGE)
    assert body == {
        "text": "*trainwatch: ✗ code · 90% sure · exit 1*\n```line &amp; &lt;b&gt;\n'''x'''```"
    }


def test_discord_stays_under_its_limit_and_pings_nobody():
    long = Message("end", "t", "\n".join(f"line {i} @everyone" for i in range(500)))
    body = payload("discord", long)
    assert len(body["content"]) <= 2000 and body["content"].rstrip("`\n").endswith("…")
    assert body["allowed_mentions"] == {"parse": []}


def test_teams_gets_an_adaptive_card_with_a_block_a_line():
    body = payload("teams", MESSAGE)
    card = body["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard"
    assert [b["text"] for b in card["body"]] == [MESSAGE.title, "line & <b>", "```x```"]


def test_plain_is_the_message_and_its_fields():
    assert payload("plain", MESSAGE) == {
        "event": "end",
        "title": MESSAGE.title,
        "text": MESSAGE.text,
        "a": 1,
    }


def _delivered() -> Delivered:
    verdict = Verdict(
        "code",
        "code/python-error",
        0.9,
        "A KeyError was raised in the training loop.",
        evidence=tuple(Cited("exception", f"KeyError: 'label_{i}'", "probe") for i in range(5)),
        culprit=Culprit("train.py", 42, "step", "y = batch['label']"),
        advice=("Check the keys.",),
        doc_url="https://docs.example/keyerror",
    )
    diagnosis = Diagnosis(
        "0.1.0",
        ("python3", "train.py"),
        None,
        7993.0,
        ExitStatus.from_returncode(1),
        verdict,
        Evidence(source="run"),
    )
    return Delivered(diagnosis, outline(diagnosis, 1), 1)


def _notifier(env=None, **settings):
    from trainwatch.cli.notify.config import NotifySettings

    return Notifier(
        NotifySettings(urls=("http://127.0.0.1:9/x",), **settings),
        ("python3", "train.py", "--api-key", "abcdef123456"),
        env or {},
        lambda text: None,
    )


def test_the_end_message_is_the_outline_without_links_or_a_second_headline():
    message = _notifier().end_message(_delivered(), "/runs/r.json")
    assert message.title == "trainwatch: ✗ code/python-error · 90% sure · exit 1"
    lines = message.text.splitlines()
    assert lines[0] == "A KeyError was raised in the training loop."
    assert "KeyError: 'label_2'" in message.text and "KeyError: 'label_3'" not in message.text
    assert "https://" not in message.text
    assert lines[-1].endswith("ran 2 h 13 min · python3 train.py")
    assert message.fields["report"] == "/runs/r.json"
    assert message.fields["verdict"]["subtype"] == "code/python-error"
    json.dumps(message.fields)


def test_live_messages_are_redacted():
    notifier = _notifier(env={"WANDB_API_KEY": "wandb-secret-value"})
    event = LiveEvent("nan", "The loss became NaN at step 3.", 12.0, "step 3", "wandb-secret-value")
    message = notifier.live_message(event)
    assert "wandb-secret-value" not in json.dumps(message.fields) + message.text
    assert "abcdef123456" not in message.text and "--api-key '[REDACTED]'" in message.text
    assert message.title == "trainwatch: ! the loss is not a number"


def test_live_events_are_posted_only_when_asked_for():
    sent = []
    notifier = _notifier(events=frozenset({"stall"}))
    notifier.post = sent.append
    notifier.on_event(LiveEvent("nan", "x", 1.0))
    assert sent == []
    notifier.on_event(LiveEvent("stall", "y", 1.0))
    assert [m.event for m in sent] == ["stall"]


def test_on_nan_warn_warns_and_notifies_even_without_notify_on():
    warned, sent = [], []
    notifier = _notifier()
    notifier.post = sent.append
    listener = LiveListener(notifier, "warn", warned.append, warned.append, 30.0)
    listener(LiveEvent("nan", "The loss became NaN at step 3.", 1.0))
    assert warned == ["The loss became NaN at step 3. The run goes on (--on-nan warn)."]
    assert [m.event for m in sent] == ["nan"]


def test_on_nan_stop_says_so_on_stderr_without_a_notifier():
    said: list[str] = []
    listener = LiveListener(None, "stop", said.append, said.append, 30.0)
    listener(LiveEvent("nan", "The loss became NaN at step 3.", 1.0, stopping=True))
    assert said == [
        "trainwatch: --on-nan stop: The loss became NaN at step 3. Interrupting the run "
        "(SIGINT); it is terminated if it has not ended in 30 s."
    ]
