"""The records made before `trainwatch run` starts the program (diagnostics/startup.py): frozen,
with the dataclass-like fields, defaults, methods and docstring their class statement gives."""

from __future__ import annotations

import pytest

from trainwatch.cli.options import RUN_OPTIONS, Option
from trainwatch.diagnostics.startup import startup_record
from trainwatch.diagnostics.watch.target import Target


@startup_record
class Pair:
    """Two values."""

    left: int
    right: tuple[str, ...] = ()
    tag: str | None = None

    @property
    def width(self) -> int:
        return self.left + len(self.right)


def test_fields_come_in_order_with_their_defaults():
    assert Pair._fields == ("left", "right", "tag")
    assert Pair(1) == Pair(left=1, right=(), tag=None)
    assert Pair(2, ("a",)).width == 3
    assert Pair.__doc__ == "Two values."
    assert Pair.__name__ == "Pair" and Pair.__module__ == __name__


def test_a_record_cannot_be_changed_or_given_new_attributes():
    pair = Pair(1)
    with pytest.raises(AttributeError):
        pair.left = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        pair.extra = 3  # type: ignore[attr-defined]
    assert pair._replace(left=2) == Pair(2)


def test_a_field_without_default_after_one_with_a_default_is_refused():
    # a named tuple would give the default to the wrong field without a word
    with pytest.raises(TypeError, match="without a default follows"):

        @startup_record
        class Wrong:
            first: int = 0
            second: int


def test_the_project_records_keep_their_meaning():
    assert Target(("python3", "x.py"), python=True).argv == ("python3", "x.py")
    interval = next(o for o in RUN_OPTIONS if o.field == "interval")
    assert isinstance(interval, Option) and interval.takes_value and interval.default == 0.5
    assert not next(o for o in RUN_OPTIONS if o.field == "quiet").takes_value
