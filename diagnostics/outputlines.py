"""The child's output bytes cut into lines for the observers (log parser, progress tracker), apart from the relay."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .evidence import LogLine

# A line longer than this is cut for diagnosis (never for pass-through): one gigantic line must not cost memory.
MAX_LINE_CHARS = 8192

LineObserver = Callable[[LogLine], None]


class LineSplitter:
    """Cuts a byte stream into lines for the observers; `\\r` ends a segment too, so progress bars are seen live."""

    def __init__(self, stream: str, observers: Sequence[LineObserver]) -> None:
        self.stream = stream
        self.observers = observers
        self.number = 0
        self._pending = bytearray()

    def feed(self, data: bytes) -> None:
        if not self.observers:
            return
        self._pending += data
        start = 0
        buf = self._pending
        while True:
            nl = buf.find(b"\n", start)
            cr = buf.find(b"\r", start)
            ends = [i for i in (nl, cr) if i >= 0]
            if not ends:
                break
            end = min(ends)
            self._emit(bytes(buf[start:end]), newline=(end == nl))
            start = end + 1
        del buf[:start]
        if len(buf) > MAX_LINE_CHARS * 4:  # a gigantic line: keep its head for diagnosis, drop the rest
            del buf[MAX_LINE_CHARS:]

    def close(self) -> None:
        if self._pending:
            self._emit(bytes(self._pending), newline=True)
            self._pending.clear()

    def _emit(self, raw: bytes, newline: bool) -> None:
        if not raw.strip():
            if newline:
                self.number += 1
            return
        if newline:
            self.number += 1
        text = raw[:MAX_LINE_CHARS].decode("utf-8", "replace")
        line = LogLine(number=self.number + (0 if newline else 1), text=text, stream=self.stream)
        for observe in self.observers:
            try:
                observe(line)
            except Exception:  # an observer's bug must never stop the relay of the child's output
                pass
