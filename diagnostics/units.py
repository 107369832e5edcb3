"""How trainwatch writes sizes and durations for people: one spelling in every report and list."""

from __future__ import annotations


def human_bytes(n: float | None) -> str:
    """`1536` -> `1.5 KiB`; None (or what is no number: a hand-edited report's) -> `?`."""
    if not isinstance(n, int | float) or isinstance(n, bool):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


_UNITS = {
    "bytes": 1,
    "B": 1,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
    "PiB": 2**50,
    "EiB": 2**60,
}
# a size as torch and NumPy print it: `2.00 GiB`, `4.00 PiB`
SIZE_PATTERN = r"(\d+(?:\.\d+)?) ?(bytes|B|[KMGTPE]iB)"


def parse_bytes(number: str, unit: str) -> int:
    """The two groups of SIZE_PATTERN as bytes: `("2.00", "GiB")` -> 2147483648."""
    return int(float(number) * _UNITS[unit])


def human_duration(seconds: float | None) -> str:
    """`42.3` -> `42 s`; `725` -> `12 min 5 s`; `7993` -> `2 h 13 min`; None -> `?`."""
    if seconds is None:
        return "?"
    whole = int(round(seconds))
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
