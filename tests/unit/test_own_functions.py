"""Finding the program's own definition of a function whose call did not fit it."""

from pathlib import Path

from trainwatch.diagnostics.evidence import ExceptionChain, Frame, RaisedException
from trainwatch.diagnostics.watch.own_functions import own_functions


def _chain(message: str, *files: Path, kind: str = "TypeError") -> ExceptionChain:
    frames = tuple(Frame(str(f), 9, "<module>", "call()", True) for f in files)
    return ExceptionChain((RaisedException(kind, message, frames),), "probe")


def test_a_function_or_method_the_program_defines_is_found_with_its_line(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import torch\n\ndef train_step(a, b):\n    pass\n\nclass Net:\n    def step(self, x):\n"
        "        pass\n"
    )
    found = own_functions(
        [_chain("train_step() missing 1 required positional argument: 'b'", script)]
    )
    assert [(f.name, f.line) for f in found] == [("train_step", 3)]
    method = _chain("Net.step() takes 2 positional arguments but 3 were given", script)
    assert [(f.name, f.line) for f in own_functions([method])] == [("step", 7)]


def test_a_name_the_program_only_shares_with_a_library_s_is_not_its_own(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("class Net:\n    def step(self):\n        pass\n")
    # a bare `step` (a method's name before Python 3.10) is only a top-level function's
    bare = _chain("step() missing 1 required positional argument: 'metrics'", script)
    assert own_functions([bare]) == ()
    # the scheduler's method, not the program's class
    other = _chain("ReduceLROnPlateau.step() missing 1 required positional argument", script)
    assert own_functions([other]) == ()
    # not a call's TypeError, or not a TypeError at all
    assert own_functions([_chain("Net.step() is not callable", script)]) == ()
    assert own_functions([_chain("Net.step() takes 1", script, kind="ValueError")]) == ()
    # a frame whose file is gone
    assert own_functions([_chain("run() takes 1", tmp_path / "gone.py")]) == ()
