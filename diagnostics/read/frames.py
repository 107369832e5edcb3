"""Frames as tracebacks print them, and the one notion of the user's own code.

A frame is the user's unless its file lies in an installed package (site-packages, dist-packages), a
package's command-line entry point (`bin/torchrun`), the standard library, frozen bootstrap code,
torch's internals, code a package generated into a temporary file, native code (C/C++/CUDA sources,
shared libraries, Cython sources compiled into an extension module (`File "gold.pyx"`), unresolved
`??` frames in a flight-recorder or gdb stack), trainwatch's own probe, or a directory the process
reported as a library one (the probe's handshake lists them). Code given on the command line
(`python -c`, piped to `python -`) is the user's at its top level, and so is a notebook cell
(`<ipython-input-3-...>`); `exec`'d strings inside libraries (six's `raise_from`) are not.
"""

from __future__ import annotations

import linecache
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainwatch.diagnostics.evidence import Frame

# A Cython source (`File "gold.pyx", line 112, in spacy.gold.GoldCorpus.__init__`) is printed only
# when an extension module compiled from it raised: a package's, installed as a binary.
_CYTHON_SOURCE = r"\.(?:pyx|pxd|pxi)$"
# A package's command-line entry point as pip writes it (`bin/torchrun`, `bin/accelerate`: a name
# without a dot; on Windows the `Scripts\torchrun.exe\__main__.py` of its launcher): two lines that
# import the package's `main` and call it, never the program's own code.
_CONSOLE_SCRIPT = r"[/\\]bin[/\\][^/\\.]+$|[/\\]Scripts[/\\][^/\\]+\.exe[/\\]__main__\.py$"
# Code a package wrote out and imported at run time: a module path as a temporary file's name
# (PyTorch Geometric's `/tmp/torch_geometric.nn.conv.sage_conv_SAGEConv_propagate_x1y2.py`, where
# every edge_index check raises: a real run named it the culprit), and torch.compile's kernels.
_GENERATED = (
    r"[/\\](?:tmp|Temp|T)[/\\](?:[^/\\]+[/\\])?[A-Za-z_]\w*(?:\.[A-Za-z_]\w*){2,}\.py$|"
    r"[/\\]torchinductor_[^/\\]+[/\\]"
)
_NOT_USER = re.compile(
    r"site-packages|dist-packages|[/\\]lib[/\\]python\d(?:\.\d+)?[/\\]|[/\\]Lib[/\\]|^<frozen|"
    r"(?:^|[/\\])torch[/\\](?:csrc|_C|lib)[/\\]|^\$PYTHON|^~?/?\.?local/lib/|^\?\?$|"
    r"\.(?:c|cc|cpp|cxx|cu|cuh|h|hpp)$|\.so(?:\.\d+)*$|" + _CYTHON_SOURCE + "|"
    r"trainwatch-probe-[^/\\]*[/\\]site[/\\]sitecustomize\.py$|"
    + _CONSOLE_SCRIPT
    + "|"
    + _GENERATED
)


_INSTALLED = re.compile(r"[/\\](?:site|dist)-packages[/\\]|" + _CYTHON_SOURCE)


def forward_slashes(path: str) -> str:
    """The path with Windows' separators written as `/`: the one spelling path rules compare."""
    return path.replace("\\", "/")


def file_name(path: str) -> str:
    """`/srv/proj/training/dataset.py` (or a Windows path) -> `dataset.py`."""
    return forward_slashes(path).rsplit("/", 1)[-1]


def in_installed_package(path: str) -> bool:
    """Does this file lie in an installed package (site-packages, dist-packages, or a compiled
    extension's Cython source)?"""
    return _INSTALLED.search(path) is not None


def is_user_file(path: str, function: str = "<module>", library_dirs: Sequence[str] = ()) -> bool:
    """Is this frame the user's own code (see the module's docstring)?"""
    if path.startswith("<"):
        # a notebook cell is the user's own code, as IPython's newer `Cell In[n]` frames are
        return path.startswith("<ipython-input-") or (
            path in ("<string>", "<stdin>") and function == "<module>"
        )
    if _NOT_USER.search(path):
        return False
    if library_dirs:
        normal = os.path.normpath(path)
        for lib in library_dirs:
            lib = os.path.normpath(lib)
            if normal == lib or normal.startswith(lib + os.sep):
                return False
    return True


def probe_said_user(file: str, function: str, said: bool) -> bool:
    """Is a frame the probe recorded the user's? Where the probe said so (it knew the process's
    library folders and working directory) and this module's notion agrees: the probe makes a
    relative path absolute against the working directory, and a Cython source's
    (`pandas/_libs/hashtable_class_helper.pxi`) then passes for the program's own file."""
    return said and is_user_file(file, function)


def make_frame(
    file: str, line: int, function: str, library_dirs: Sequence[str] = (), code: str | None = None
) -> Frame:
    """A frame as a traceback printed it, judged the user's or not."""
    file, function = file.strip(), function.strip()
    return Frame(file, line, function, code, is_user_file(file, function, library_dirs))


def source_line(path: str, line: int) -> str | None:
    """A frame's source line read from its file (faulthandler prints none: it cannot read files
    from a signal handler)."""
    if line <= 0 or path.startswith("<"):
        return None
    try:
        return linecache.getline(path, line).strip() or None
    except (OSError, UnicodeDecodeError, ValueError):
        return None


@dataclass(frozen=True)
class ThreadStack:
    """One thread's stack as faulthandler dumped it, outermost call first."""

    thread_id: int
    current: bool  # the thread that ran the signal handler: the crashing one, for a fatal signal
    main: bool  # the process's main thread (known from the handshake)
    frames: tuple[Frame, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "thread_id": hex(self.thread_id),
            "current": self.current,
            "main": self.main,
            "frames": [f.to_dict() for f in self.frames],
        }
