"""Where notifications go and when: `--notify`, `$TRAINWATCH_NOTIFY` and the config file's
`[notify]` table, merged once into `NotifySettings`.

A bad value on the command line is a usage error (nothing is launched); a bad value in the
environment or the config file is one warning line, and the rest of the settings still apply.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainwatch.cli.options import NOTIFY_ENV, NOTIFY_EVENTS, NOTIFY_FORMATS, config_file
from trainwatch.diagnostics.errors import UsageError

CONFIG_KEYS = ("url", "format", "on", "on_exit", "timeout")
POST_TIMEOUT_S = 10.0  # one post: connecting, sending, and the answer (config: notify.timeout)
MAX_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class NotifySettings:
    """The webhooks, their format, the events beyond the end, and the command to run at exit."""

    urls: tuple[str, ...] = ()
    format: str = "auto"
    events: frozenset[str] = frozenset()  # "stall", "nan": the end is always notified
    on_exit: str | None = None
    timeout: float = POST_TIMEOUT_S  # seconds for one post

    @property
    def active(self) -> bool:
        return bool(self.urls or self.on_exit)


def load_settings(options: Any, env: Mapping[str, str], warn) -> NotifySettings:
    """The settings from the command line (`options`), the environment and the config file;
    `warn(text)` hears of what in the latter two was left out."""
    urls = [checked_url(u, "--notify") for u in options.notify]
    events = set(parse_events(options.notify_on, "--notify-on"))
    for url in re.split(r"[\s,]+", env.get(NOTIFY_ENV, "").strip()):
        if url:
            _add(urls, url, f"${NOTIFY_ENV}", warn)
    table = _config_table(config_file(env), warn)
    for url in _strings(table, "url", warn):
        _add(urls, url, "the config file's notify.url", warn)
    if on := _strings(table, "on", warn):
        try:
            events |= set(parse_events(",".join(on), ""))
        except UsageError as exc:
            warn(f"config file: notify.on: {exc.message}; left out")
    fmt = options.notify_format
    if fmt is None and "format" in table:
        if table["format"] in NOTIFY_FORMATS:
            fmt = table["format"]
        else:
            warn(f"config file: notify.format must be one of {', '.join(NOTIFY_FORMATS)}")
    on_exit = options.on_exit
    if on_exit is None and "on_exit" in table:
        if isinstance(table["on_exit"], str):
            on_exit = table["on_exit"] or None
        else:  # a number or a list run as a shell command would be a command nobody wrote
            warn("config file: notify.on_exit must be a string (a shell command); left out")
    timeout = table.get("timeout", POST_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        timeout = -1
    if not 0 < timeout <= MAX_TIMEOUT_S:
        warn(f"config file: notify.timeout must be seconds, above 0 and at most {MAX_TIMEOUT_S:g}")
        timeout = POST_TIMEOUT_S
    return NotifySettings(tuple(urls), fmt or "auto", frozenset(events), on_exit, float(timeout))


def checked_url(url: str, where: str) -> str:
    """An http(s) URL with a host, or a UsageError naming `where` it came from."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{where}: not an http(s) URL: {shown_url(url)}")
    return url


def shown_url(url: str) -> str:
    """A webhook URL as trainwatch prints it: scheme and host only, since the path of a Slack,
    Discord or Teams webhook is its secret."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return "(not a URL)"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}/…"


def parse_events(text: str | None, where: str) -> tuple[str, ...]:
    """`"stall,nan"` -> ("stall", "nan"); a UsageError for anything else."""
    if not text:
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for name in names:
        if name not in NOTIFY_EVENTS:
            raise UsageError(
                f"{where or 'notify events'}: unknown event {name!r} "
                f"(one of: {', '.join(NOTIFY_EVENTS)}; the end is always notified)"
            )
    return names


def _add(urls: list[str], url: str, where: str, warn) -> None:
    try:
        checked = checked_url(url, where)
    except UsageError as exc:
        warn(f"{exc.message}; left out")
        return
    if checked not in urls:
        urls.append(checked)


def _strings(table: dict[str, Any], key: str, warn) -> list[str]:
    """The config file's `key`: a string or a list of strings; [] (and a warning) for another
    type, so one mistyped value never stops the run."""
    value = table.get(key, [])
    values = [value] if isinstance(value, str) else value
    if isinstance(values, list) and all(isinstance(v, str) for v in values):
        return values
    warn(f"config file: notify.{key} must be a string or a list of strings; left out")
    return []


def _config_table(path: str, warn) -> dict[str, Any]:
    """The config file's `[notify]` table; {} when there is none or it cannot be read."""
    import tomllib

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        warn(f"cannot read the config file {path}: {exc.strerror or exc}")
        return {}
    except tomllib.TOMLDecodeError as exc:
        warn(f"the config file {path} is not valid TOML ({exc}); it is ignored")
        return {}
    table = data.get("notify", {})
    if not isinstance(table, dict):
        warn(f"the config file {path}: [notify] must be a table; it is ignored")
        return {}
    unknown = sorted(set(table) - set(CONFIG_KEYS))
    if unknown:
        warn(
            f"the config file {path}: unknown key(s) in [notify]: {', '.join(unknown)} "
            f"(known: {', '.join(CONFIG_KEYS)})"
        )
    return table
