"""A saved log's encoding: the byte-order marks and the UTF-16 that Windows tools write, read as the
UTF-8 text the reader takes."""

from __future__ import annotations

import codecs
from typing import BinaryIO

UTF8_BOM = codecs.BOM_UTF8
# Windows PowerShell 5's `>` and `Out-File` write UTF-16 (little-endian, with a byte-order mark).
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Without a mark: text in UTF-16 has a NUL in every other byte where a character is ASCII (half
# the characters or more, even in a log of CJK messages: paths, numbers, tracebacks), and almost
# never in the bytes between; binary data has NULs in both.
_WIDE_SHARE = 0.5
_NARROW_NULS = 0.01
_WIDE_MIN_BYTES = 64


def utf16_codec(head: bytes) -> str | None:
    """The codec of a log in UTF-16, from its first bytes; None for any other bytes."""
    if head.startswith(_UTF16_BOMS):
        return "utf-16"  # the codec reads the mark and drops it
    sample = head[: len(head) - len(head) % 2]
    if len(sample) < _WIDE_MIN_BYTES:
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, text, codec in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        wide = zeros.count(0) >= _WIDE_SHARE * len(zeros)
        if wide and text.count(0) <= _NARROW_NULS * len(text):
            return codec
    return None


class Utf16AsUtf8:
    """A UTF-16 stream read as UTF-8 bytes. It has no descriptor: what reads a file by its offsets
    (read/prefilter.py's second-half reader) leaves it to the parser."""

    def __init__(self, raw: BinaryIO, codec: str) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        self._out = b""
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            rest = self._decoder.decode(self._raw.read(), final=True).encode("utf-8")
            data, self._out, self._ended = self._out + rest, b"", True
            return data
        while len(self._out) < size and not self._ended:
            chunk = self._raw.read(max(size, 4096))
            self._ended = not chunk
            self._out += self._decoder.decode(chunk, final=self._ended).encode("utf-8")
        data, self._out = self._out[:size], self._out[size:]
        return data
