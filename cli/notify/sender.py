"""Posting notifications: the `Notifier` (a thread per post, bounded) and the run's `LiveListener`.

urllib.request is imported in the posting threads: building a notifier before the child starts
costs the run nothing measurable.
"""

from __future__ import annotations

import json
import queue
import shlex
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from trainwatch.cli.notify.config import NotifySettings, shown_url
from trainwatch.cli.notify.formats import Message, detect_format, payload
from trainwatch.diagnostics import __version__
from trainwatch.diagnostics.redaction import Redactor
from trainwatch.diagnostics.units import human_duration

# At the end trainwatch waits for its posts at most the posts' timeout and this much more.
FINISH_MARGIN_S = 5.0
# The report's sections a notification carries, and how many rows of each.
SECTIONS = ("evidence", "culprit", "run", "advice")
ROWS = 3
LIVE_TITLES = {
    "stall": "the run looks stuck",
    "nan": "the loss is not a number",
}

Warn = Callable[[str], None]


class Notifier:
    """Posts the run's messages to every webhook of `settings`."""

    def __init__(
        self,
        settings: NotifySettings,
        command: tuple[str, ...],
        env: Mapping[str, str],
        warn: Warn,
    ) -> None:
        self.settings = settings
        self.host = socket.gethostname()
        self.redactor = Redactor(env)
        self.command = shlex.join(self.redactor.argv(command))
        self.warn = warn
        # One queue and one sending thread per webhook: its messages arrive in the order they
        # happened (a stall before the end), and a slow webhook delays no other.
        self._queues: dict[str, tuple[queue.Queue, threading.Thread]] = {}
        self._lock = threading.Lock()

    def on_event(self, event: Any) -> None:
        """A `LiveEvent` (diagnostics/watch/alerts.py), posted when its kind was asked for."""
        if event.kind in self.settings.events and self.settings.urls:
            self.post(self.live_message(event))

    def live_message(self, event: Any) -> Message:
        summary = self.redactor.text(event.summary)
        line = self.redactor.text(event.line) if event.line else None
        text = "\n".join(
            [summary]
            + ([f"  {line}"] if line else [])
            + [f"{self.host} · running for {human_duration(event.elapsed_s)} · {self.command}"]
        )
        return Message(
            event.kind,
            f"trainwatch: ! {LIVE_TITLES.get(event.kind, event.kind)}",
            text,
            {
                "summary": summary,
                "position": event.position,
                "line": line,
                "stopping": event.stopping,
                "elapsed_s": round(event.elapsed_s, 1),
                "host": self.host,
                "command": self.command,
                "trainwatch_version": __version__,
            },
        )

    def end_message(self, delivered: Any, report_path: str | None = None) -> Message:
        """The run's end, from the reports' redacted diagnosis and outline (cli/reports)."""
        diagnosis, view = delivered.diagnosis, delivered.outline
        command = shlex.join(diagnosis.command) if diagnosis.command else self.command
        text = view.text(sections=SECTIONS, per_section=ROWS, headline=False)
        text += f"\n\n{self.host} · ran {human_duration(diagnosis.duration_s)} · {command}"
        verdict = diagnosis.verdict
        return Message(
            "end",
            f"trainwatch: {view.headline}",
            text,
            {
                "verdict": {
                    "category": verdict.category,
                    "subtype": verdict.subtype,
                    "confidence": round(verdict.confidence, 2),
                    "summary": verdict.summary,
                },
                "exit_status": delivered.status,
                "exit": None if diagnosis.exit is None else diagnosis.exit.to_dict(),
                "duration_s": None
                if diagnosis.duration_s is None
                else round(diagnosis.duration_s, 1),
                "started_at": diagnosis.started_at,
                "host": self.host,
                "command": command,
                "report": report_path,
                "trainwatch_version": __version__,
            },
        )

    def post_end(self, delivered: Any, report_path: str | None = None) -> None:
        """Post the run's end (call `wait()` before exiting)."""
        if self.settings.urls:
            self.post(self.end_message(delivered, report_path))

    def wait(self) -> None:
        """Wait, at most the posts' timeout and FINISH_MARGIN_S in all, for every post still
        under way."""
        limit = self.settings.timeout + FINISH_MARGIN_S
        deadline = time.monotonic() + limit
        with self._lock:
            senders = list(self._queues.items())
        for _, (pending, _) in senders:
            pending.put(None)  # no more messages: the sender ends after the last
        for url, (_, thread) in senders:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self.warn(
                    f"notification to {shown_url(url)} still unanswered after {limit:.0f} s; "
                    "given up"
                )

    def post(self, message: Message) -> None:
        """Queue `message` for every webhook; returns at once."""
        for url in self.settings.urls:
            fmt = self.settings.format if self.settings.format != "auto" else detect_format(url)
            body = json.dumps(payload(fmt, message), ensure_ascii=False).encode("utf-8")
            with self._lock:
                if url not in self._queues:
                    pending: queue.Queue = queue.Queue()
                    thread = threading.Thread(
                        target=self._sender, args=(url, pending), name="trainwatch-notify"
                    )
                    thread.daemon = True  # a webhook that never answers must not keep us alive
                    self._queues[url] = (pending, thread)
                    thread.start()
                self._queues[url][0].put(body)

    def _sender(self, url: str, pending: queue.Queue) -> None:
        while (body := pending.get()) is not None:
            self._send(url, body)

    def _send(self, url: str, body: bytes) -> None:
        import urllib.error
        import urllib.request

        address, credentials = _without_credentials(url)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"trainwatch/{__version__}",
        }
        if credentials is not None:
            headers["Authorization"] = f"Basic {credentials}"
        request = urllib.request.Request(address, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                response.read(1 << 16)
        except urllib.error.HTTPError as exc:  # a URLError too: first
            self.warn(f"notification to {shown_url(url)} failed: HTTP {exc.code} {exc.reason}")
        except urllib.error.URLError as exc:
            self.warn(f"notification to {shown_url(url)} failed: {self._reason(exc.reason)}")
        except (OSError, ValueError) as exc:  # timeouts, resets, a malformed answer
            self.warn(f"notification to {shown_url(url)} failed: {self._reason(exc)}")

    def _reason(self, exc: object) -> str:
        if isinstance(exc, TimeoutError | socket.timeout):
            return f"no answer within {self.settings.timeout:g} s"
        text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return text.splitlines()[0][:200]


def _without_credentials(url: str) -> tuple[str, str | None]:
    """(the URL without its `user:password@`, their base64 for Basic authentication, or None):
    urllib resolves `user:password@host` as a host name and never sends them (a self-hosted ntfy
    or a proxy's webhook guarded so)."""
    import base64
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    pair = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    return parts._replace(netloc=host).geturl(), base64.b64encode(pair.encode()).decode("ascii")


class LiveListener:
    """The run's `on_event`: says on stderr what `--on-nan` does about a loss gone NaN and each
    stall `--stall-timeout` declares (left running, a user at the terminal would otherwise learn of
    it only from the final report), and hands every event to the notifier, which posts those asked
    for."""

    def __init__(
        self,
        notifier: Notifier | None,
        on_nan: str | None,
        warn: Warn,
        say: Warn,
        grace: float,
    ) -> None:
        self.notifier = notifier
        self.on_nan = on_nan
        self.warn = warn
        self.say = say
        self.grace = grace
        self.redactor = notifier.redactor if notifier is not None else Redactor()

    def __call__(self, event: Any) -> None:
        summary = self.redactor.text(event.summary)
        if event.kind == "nan" and event.stopping:
            self.say(
                f"trainwatch: --on-nan stop: {summary} Interrupting the run (SIGINT); it is "
                f"terminated if it has not ended in {self.grace:g} s."
            )
        elif event.kind == "nan" and event.spared:
            self.warn(
                f"{summary} The training loop had already finished: the run is not interrupted "
                "(--on-nan stop)."
            )
        elif event.kind == "nan" and self.on_nan == "warn":
            self.warn(f"{summary} The run goes on (--on-nan warn).")
        elif event.kind == "stall":
            self.say(f"trainwatch: {summary}")
        notifier = self.notifier
        if notifier is None:
            return
        if (
            event.kind == "nan"
            and self.on_nan is not None
            and "nan" not in notifier.settings.events
        ):
            if notifier.settings.urls:  # --on-nan notifies of what it sees on its own
                notifier.post(notifier.live_message(event))
            return
        notifier.on_event(event)
