"""One notification, written for each kind of webhook: Slack, Discord, Microsoft Teams, or plain
JSON for anything else (a chat bridge, ntfy, a script of one's own).

The text is the same everywhere: plain, link-free, already redacted; each format only wraps it as
its service wants (a code block keeps the report's columns and stops `__init__` from turning bold).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

# Discord refuses a message over 2,000 characters; Slack cuts a text block near 3,000 and Teams'
# cards past ~28 KB. One limit for all keeps the messages alike.
TEXT_LIMIT = 1800
TEAMS_LINES = 60


@dataclass(frozen=True)
class Message:
    """A notification before it is formatted."""

    event: str  # "end", "stall", "nan"
    title: str  # one line: "trainwatch: ✗ numerical/nan-loss · 90% sure · exit 130"
    text: str  # the body: plain text, link-free, redacted
    fields: dict[str, Any] = field(default_factory=dict)  # the facts, for the plain format


def detect_format(url: str) -> str:
    """The service a webhook URL belongs to, from its host (and Discord's path); "plain" else."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in ("hooks.slack.com", "hooks.slack-gov.com"):
        return "slack"
    if host.endswith(("discord.com", "discordapp.com")) and "/api/webhooks/" in parts.path:
        return "discord"
    if host.endswith(
        (".webhook.office.com", "outlook.office.com", ".logic.azure.com", ".powerplatform.com")
    ):
        return "teams"
    return "plain"


def payload(fmt: str, message: Message) -> dict[str, Any]:
    """The JSON body to post for `message` in format `fmt` (never "auto": see detect_format)."""
    body = _cut(message.text, TEXT_LIMIT)
    if fmt == "slack":
        # mrkdwn: &, < and > are the only characters to escape (Slack's "Formatting text" guide)
        return {"text": f"*{_slack(message.title)}*\n```{_slack(_fence(body))}```"}
    if fmt == "discord":
        return {
            "content": f"**{message.title}**\n```\n{_fence(body)}\n```",
            "allowed_mentions": {"parse": []},  # an @everyone in a log line pings nobody
        }
    if fmt == "teams":
        # An Adaptive Card, which both Teams' Workflows webhooks and its older connectors take;
        # one text block a line, since a card's text block folds single line breaks.
        lines = body.splitlines()[:TEAMS_LINES]
        blocks = [{"type": "TextBlock", "text": message.title, "weight": "Bolder", "wrap": True}]
        blocks += [
            {
                "type": "TextBlock",
                "text": line or " ",
                "wrap": True,
                "fontType": "Monospace",
                "spacing": "None",
            }
            for line in lines
        ]
        card = {"type": "AdaptiveCard", "version": "1.4", "body": blocks}
        return {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
            ],
        }
    return {
        "event": message.event,
        "title": message.title,
        "text": message.text,
        **message.fields,
    }


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 2].rsplit("\n", 1)[0] + "\n…"


def _fence(text: str) -> str:
    return text.replace("```", "'''")  # a fence inside the text would end the code block


def _slack(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
