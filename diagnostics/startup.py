"""The records `trainwatch run` makes before it starts the program: typed and frozen like the
dataclasses after it, built as named tuples.

Until the program is started, every millisecond is its user's wait (docs/architecture.md,
start-up): `dataclasses` imports `inspect` (~11 ms), each frozen dataclass then costs ~0.9 ms to
define, and `typing`, for `typing.NamedTuple`, ~4 ms more. `collections.namedtuple` costs ~0.1 ms
a class and nothing to import. Modules loaded before the start also write `TYPE_CHECKING = False`
rather than import it from `typing` (type checkers recognise the name).
"""

from __future__ import annotations

from collections import namedtuple

# Class attributes that belong to the class statement, not to the record.
_CLASS_MACHINERY = frozenset({"__dict__", "__weakref__"})


def startup_record(cls: type) -> type:
    """`cls` as an immutable named tuple: its annotated fields in order, with their defaults; its
    docstring, methods and properties kept. Fields with defaults must come last, as in a
    dataclass (a named tuple would silently give the defaults to the wrong fields)."""
    own = vars(cls)
    names = list(own.get("__annotations__", {}))
    with_default = [n for n in names if n in own]
    if names[len(names) - len(with_default) :] != with_default:
        raise TypeError(f"{cls.__name__}: a field without a default follows one with a default")
    body = {k: v for k, v in own.items() if k not in _CLASS_MACHINERY and k not in with_default}
    body["__slots__"] = ()  # no instance dict: the record stays immutable
    base = namedtuple(
        cls.__name__, names, defaults=[own[n] for n in with_default], module=cls.__module__
    )
    return type(cls.__name__, (base,), body)
