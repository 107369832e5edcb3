"""trainwatch's probe, the child side: records from inside one Python process of a watched run.

trainwatch copies this file into a private directory and puts that directory first on the child's
PYTHONPATH, so
that every Python process of the run (the script, torchrun's ranks, spawned DataLoader workers)
imports it at
start-up as `sitecustomize`. It may run under another interpreter than trainwatch's own, so it
imports nothing but
the standard library (and nothing expensive at start-up), keeps to Python 3.8 syntax, never writes
to the
process's stdout or stderr, never raises, and never changes how the process exits. The record format
is in
docs/probe.md; the parent side that reads it is records.py beside this file.
"""

import _collections_abc  # loaded by `os` before any sitecustomize: importing it costs nothing
import os
import sys

# The parent's settings. Without TRAINWATCH_PROBE_DIR (a copy left on a path by mistake) the probe
# only chains.
_RECORDS_DIR = os.environ.get("TRAINWATCH_PROBE_DIR")
_HERE = os.path.dirname(os.path.abspath(__file__))
_OWN_FILE = __file__  # the code of the probe's wrappers, as a traceback names it
# The probe's own failures are swallowed with `except Exception`, never `except BaseException`: its
# wrappers run in the program's threads, where a Ctrl-C (KeyboardInterrupt) or a signal handler's
# `sys.exit` may land at any line, and must reach the program as without the probe (a SIGINT that
# came while the probe scanned a NaN loss's inputs was lost, and the run went on).
# A file by this name marks a directory as a trainwatch probe's, so a nested run's probe skips the
# outer one's copy.
_MARKER = "trainwatch-probe"
_VERSION = 1
# per exception: the outermost 20 and the innermost 80 (a RecursionError has ~1000)
_MAX_FRAMES = 100
# characters; a DataLoader wrapper carries a whole worker traceback in its message
_MAX_MESSAGE = 100000
_MAX_CHAIN = 16

# fault: False until armed, True once faulthandler writes to our file, None when the user's own
# setting stands.
_state = {
    "fd": -1,
    "tfd": -1,
    "pid": 0,
    "fault": False,
    "stack_signal": 0,
    "registered": False,
    "saves_watched": False,
    "exit": None,
    # The identity (id()) of the last SystemExit sys.monitoring reported (Python 3.12+), and of the
    # last exception recorded: never the exception itself, whose traceback holds the script's
    # frames, and so its globals, alive past the interpreter's clearing of __main__: their
    # __del__ (tqdm's last frame of its bar, a writer's flush) then ran after sys.stderr was gone,
    # or never (forty-third session's real runs: tqdm's final line lost in 8 of 15 crashed runs)
    "raised_exit": None,
    "recorded": None,
    "lib": (),
    "fd_id": None,
    "tfd_id": None,
    "fd_path": "",
    "tfd_path": "",
    "saving": {},  # thread id -> saves in progress on it (a save inside a save is part of it)
    "seq": 0,  # checkpoint saves recorded by this process
    "loss_scans": 0,  # non-finite losses whose stack was searched for NaN inputs
    "loss_notes": 0,  # records of the losses' state written before exit (_note_losses)
}


def _load_shadowed():
    """Run the `sitecustomize` this file hides (Debian's, a conda env's, the user's), as Python
    would have."""
    from importlib.machinery import PathFinder

    rest = [p for p in sys.path if isinstance(p, str) and os.path.abspath(p or ".") != _HERE]
    while True:
        spec = PathFinder.find_spec("sitecustomize", rest)
        if spec is None or spec.loader is None:
            return None
        where = os.path.dirname(spec.origin or "")
        if not os.path.exists(os.path.join(where, _MARKER)):
            break
        # an outer trainwatch's probe
        rest = [p for p in rest if os.path.abspath(p or ".") != where]
    try:
        from importlib._bootstrap import module_from_spec
    except ImportError:
        from importlib.util import module_from_spec
    module = module_from_spec(spec)
    # Code that imports `sitecustomize` later must get the environment's module, as it would without
    # us.
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)
    return module


_ESCAPES = {i: "\\u%04x" % i for i in range(32)}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"


def _encode(value):
    """JSON text for plain data; a tiny encoder because importing `json` would cost ~2 ms in every
    process."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return (
            repr(value) if value == value and value not in (float("inf"), float("-inf")) else "null"
        )
    if isinstance(value, str):
        if value.isprintable() and '"' not in value and "\\" not in value:
            return '"' + value + '"'  # the common case, without a per-character translate
        return '"' + value.translate(_ESCAPES) + '"'
    if isinstance(value, dict):
        return "{" + ",".join(_encode(str(k)) + ":" + _encode(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    return _encode(str(value))


def _write(record):
    """Append one record as one complete line with a single write on an O_APPEND descriptor."""
    if os.getpid() != _state["pid"]:
        return
    fd = _own("fd")
    if fd < 0:
        return
    # Lone surrogates (undecodable argv bytes) become \\udcXX, which is still valid JSON.
    data = (_encode(record) + "\n").encode("utf-8", "backslashreplace")
    while data:
        written = os.write(fd, data)
        data = data[written:]


_os_close = os.close  # the real one: ours must not trigger the program-close guard


def _identity(fd):
    """(device, inode) of an open descriptor: what tells our file from another one at its number."""
    st = os.fstat(fd)
    return (st.st_dev, st.st_ino)


def _own(key):
    """Our descriptor `key` ("fd" for records, "tfd" for faulthandler), proven still ours.

    A program may close every descriptor from 3 up (daemons, launchers and data libraries do) and
    then open its own files, which the kernel gives the lowest free numbers: ours. Writing to the
    old number would put our records into its checkpoint. So the number is trusted only while the
    file behind it is the one we opened (same device and inode); otherwise our file is opened
    again by its path, and faulthandler is pointed at the new descriptor.
    """
    fd = _state[key]
    if fd < 0:
        return -1
    try:
        if _identity(fd) == _state[key + "_id"]:
            return fd
    except OSError:
        pass
    return _reopen(key)


def _reopen(key):
    """Open our file `key` again by path (never creating it: only our own file will do)."""
    _state[key] = -1
    try:
        fd = os.open(_state[key + "_path"], os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return -1
    try:
        if _identity(fd) != _state[key + "_id"]:
            _close(fd)
            return -1
    except OSError:
        _close(fd)
        return -1
    _state[key] = fd
    if key == "tfd":
        _arm_faulthandler()
    return fd


def _close(fd):
    try:
        _os_close(fd)
    except OSError:
        pass


def _after_program_close(first, last):
    """The program closed descriptors `first`..`last`: if ours were among them, open ours again at
    once, before the program's next open can take our numbers (faulthandler writes to a number
    from a signal handler, where nothing can be checked)."""
    if os.getpid() != _state["pid"]:
        return
    for key in ("fd", "tfd"):
        fd = _state[key]
        if fd >= 0 and first <= fd <= last:
            _reopen(key)


def _make_close(original):
    def close(fd):
        try:
            return original(fd)
        finally:
            try:
                _after_program_close(fd, fd)
            except Exception:
                pass

    close.__doc__ = original.__doc__
    return close


def _make_closerange(original):
    def closerange(fd_low, fd_high):
        try:
            return original(fd_low, fd_high)
        finally:
            try:
                _after_program_close(fd_low, fd_high - 1)
            except Exception:
                pass

    closerange.__doc__ = original.__doc__
    return closerange


def _start_time():
    """This process's start time in clock ticks (/proc/PID/stat field 22): lets the parent detect a
    reused pid."""
    try:
        fd = os.open("/proc/self/stat", os.O_RDONLY)
        try:
            return int(os.read(fd, 4096).rsplit(b")", 1)[1].split()[19])
        finally:
            os.close(fd)
    except (OSError, ValueError, IndexError):
        return None


def _library_dirs():
    """Directories whose code is not the user's: the standard library and every site-/dist-packages
    on the path."""
    stdlib = os.path.dirname(getattr(os, "__file__", None) or "")
    dirs = [stdlib] if stdlib else []
    for entry in sys.path:
        if isinstance(entry, str) and ("site-packages" in entry or "dist-packages" in entry):
            dirs.append(entry)
    return tuple(dirs)


def _open_files(forked):
    """Create this process's record file (atomically, complete with its handshake) and its
    faulthandler file."""
    pid = os.getpid()
    base = os.path.join(_RECORDS_DIR, "%d-%s" % (pid, os.urandom(4).hex()))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    tfd = os.open(base + ".txt", flags, 0o600)
    fd = os.open(base + ".tmp", flags, 0o600)
    _state.update(fd=fd, tfd=tfd, pid=pid, fd_path=base + ".jsonl", tfd_path=base + ".txt")
    _state.update(fd_id=_identity(fd), tfd_id=_identity(tfd))
    _arm_faulthandler()
    try:
        import _thread

        thread = _thread.get_ident()
    except ImportError:
        thread = None
    hello = process_record()
    hello.update(
        {
            "forked": forked,
            "main_thread": thread,
            "traceback_file": os.path.basename(base + ".txt"),
            "fault_handler": _state["fault"] is True,
            "stack_signal": _state["stack_signal"],
        }
    )
    _write(hello)
    # The rename publishes the file with its handshake already in it: a reader never sees an empty
    # record file.
    os.rename(base + ".tmp", base + ".jsonl")


def process_record():
    """The handshake's facts about this process: who it is, its Python, its rank, and which
    directories hold code that is not the user's (the Python API reads its own process with it)."""
    import time

    if not _state["lib"]:
        _state["lib"] = _library_dirs()
    env = os.environ
    return {
        "kind": "hello",
        "v": _VERSION,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "time": time.time(),
        "start_ticks": _start_time(),
        "argv": list(getattr(sys, "orig_argv", None) or sys.argv or ()),
        "executable": sys.executable,
        "version": "%d.%d.%d" % sys.version_info[:3],
        "rank": env.get("RANK"),
        "local_rank": env.get("LOCAL_RANK"),
        "world_size": env.get("WORLD_SIZE"),
        "lib": list(_state["lib"]),
    }


def _arm_faulthandler():
    """Send fatal-signal tracebacks and requested stack dumps to this process's own file."""
    import faulthandler

    tfd = _state["tfd"]
    # None: the user enabled it (-X faulthandler); theirs goes where they asked.
    if _state["fault"] is not None:
        faulthandler.enable(file=tfd, all_threads=True)
        _state["fault"] = True
    sig = _state["stack_signal"]
    if sig > 0:
        import _signal

        # Only a signal the program does not handle: registering would replace its own handler.
        if _state.get("registered") or _signal.getsignal(sig) in (_signal.SIG_DFL, None):
            # chain=False: the default action of a real-time signal is to terminate the process.
            faulthandler.register(sig, file=tfd, all_threads=True, chain=False)
            _state["registered"] = True
        else:
            _state["stack_signal"] = 0


def _after_fork():
    """A forked child (a DataLoader worker under fork) gets files of its own, so records never
    mix."""
    try:
        for key in ("fd", "tfd"):
            if _state[key] >= 0:
                _close(_state[key])
        _state.update(fd=-1, tfd=-1, exit=None, recorded=None, saving={}, loss_notes=0)
        # the parent's DataLoader passes are the parent's: the child counts its own
        _passes.update(_PASSES_AT_START)
        _gradients.update(_GRADIENTS_AT_START)
        _open_files(forked=True)
    except Exception:
        _state["fd"] = -1


# The `cache` default is the per-process cache of source files, on purpose.
def _source_line(name, line, cache={}):  # noqa: B006
    """One line of a source file, read without `linecache`.

    The hooks must not import modules the program has not loaded: in CPython, importing a source
    module while an
    uncaught KeyboardInterrupt is being reported clears the flag that makes Python die by SIGINT,
    and the exit
    status would change from 130 to 1.
    """
    if not line or name.startswith("<"):
        return None
    lines = cache.get(name)
    if lines is None:
        try:
            with open(name, "rb") as f:
                lines = f.read(4 << 20).split(b"\n")
        except (OSError, ValueError):
            lines = []
        if len(cache) < 256:
            cache[name] = lines
    if line > len(lines):
        return None
    return lines[line - 1].decode("utf-8", "replace").strip() or None


def _frames(tb=None, frame=None):
    """(file, line, function, source line, user?) of a traceback, or of a frame's stack, outermost
    first."""
    raw = []
    while tb is not None:
        raw.append((tb.tb_frame.f_code, tb.tb_lineno))
        tb = tb.tb_next
    stack = []
    while frame is not None:
        stack.append((frame.f_code, frame.f_lineno))
        frame = frame.f_back
    raw.extend(reversed(stack))
    omitted = 0
    if len(raw) > _MAX_FRAMES:
        omitted = len(raw) - _MAX_FRAMES
        raw = raw[:20] + raw[-(_MAX_FRAMES - 20) :]
    frames = []
    for code, line in raw:
        name = code.co_filename
        try:
            source = _source_line(name, line)
        except Exception:
            source = None
        frames.append(
            {
                "file": name,
                "line": line,
                "function": code.co_name,
                "code": source,
                "user": _is_user(name),
            }
        )
    return frames, omitted


def _compiled_at(exc):
    """The place a SyntaxError names, as a last frame: Python's own traceback prints it so (`File
    "x.py", line 2` with no function), and it is where the program is to be mended, not the
    `import` that compiled it."""
    text = exc.text.strip() if isinstance(exc.text, str) else None
    name = exc.filename
    return {
        "file": name,
        "line": exc.lineno,
        "function": None,
        "code": text,
        "user": _is_user(name),
    }


def _is_user(filename):
    """Is this the user's own code, rather than the standard library's, an installed package's, or
    ours?"""
    if filename.startswith("<") and filename not in ("<string>", "<stdin>"):
        return False  # <frozen importlib._bootstrap>, ...
    path = os.path.abspath(filename) if not filename.startswith("<") else filename
    if "site-packages" in path or "dist-packages" in path or path.startswith(_HERE + os.sep):
        return False
    for lib in _state["lib"]:
        if path == lib or path.startswith(lib.rstrip(os.sep) + os.sep):
            return False
    return True


def _type_name(exc_type):
    """The type as a traceback prints it: qualified unless it is a builtin or defined in
    __main__."""
    try:
        module = exc_type.__module__
        name = exc_type.__qualname__
    except Exception:
        return "<unknown>"
    if module in (None, "builtins", "__main__"):
        return name
    return "%s.%s" % (module, name)


def _message(value):
    try:
        text = str(value)
    except Exception:
        text = "<str() failed>"
    return text[:_MAX_MESSAGE]


def _exceptions(value):
    """The exception and everything chained to it, first raised first, the way Python prints
    them."""
    chain = []
    seen = set()
    while value is not None and id(value) not in seen and len(chain) < _MAX_CHAIN:
        seen.add(id(value))
        chain.append(value)
        cause = getattr(value, "__cause__", None)
        if cause is None and not getattr(value, "__suppress_context__", False):
            cause = getattr(value, "__context__", None)
        value = cause
    chain.reverse()
    return chain


def _chain(value):
    """The chain of `value` as records: type, message, relation and frames of each exception."""
    chain = _exceptions(value)
    out = []
    for i, exc in enumerate(chain):
        frames, omitted = _frames(tb=getattr(exc, "__traceback__", None))
        if isinstance(exc, SyntaxError) and isinstance(exc.filename, str) and exc.lineno:
            frames.append(_compiled_at(exc))
        relation = None
        if i + 1 < len(chain):
            relation = "cause" if chain[i + 1].__cause__ is exc else "context"
        item = {
            "type": _type_name(type(exc)),
            "message": _message(exc),
            "relation": relation,
            "frames": frames,
        }
        if omitted:
            item["frames_omitted"] = omitted
        out.append(item)
    return out


def _torch_context(value):
    """What a diagnosis needs from torch, when the program imported it; nothing is imported or
    initialised here."""
    modules = sys.modules
    torch = modules.get("torch")
    if torch is None:
        return None
    info = {"version": str(getattr(torch, "__version__", ""))}
    try:
        info["cuda"] = torch.version.cuda
        info["hip"] = getattr(torch.version, "hip", None)
    except Exception:
        pass
    try:
        if "torch.backends.cudnn" in modules and torch.backends.cudnn.is_available():
            info["cudnn"] = torch.backends.cudnn.version()
    except Exception:
        pass
    try:
        cuda = torch.cuda
        # Asking for devices before CUDA is initialised would initialise it (slow, and fatal in a
        # forked child).
        info["cuda_initialized"] = bool(cuda.is_initialized())
        if info["cuda_initialized"]:
            count = cuda.device_count()
            info["devices"] = [cuda.get_device_name(i) for i in range(count)]
            current = cuda.current_device()
            info["current_device"] = current
            if (
                "OutOfMemoryError" in type(value).__name__
                or "out of memory" in _message(value)[:2000]
            ):
                info["memory"] = {
                    "allocated": cuda.memory_allocated(current),
                    "reserved": cuda.memory_reserved(current),
                    "max_allocated": cuda.max_memory_allocated(current),
                }
    except Exception:
        pass
    return info


def exception_record(value, thread=None):
    """The `exception` record of an exception: its chain, the thread it ended, and torch's state.

    Also what trainwatch's Python API (`trainwatch.diagnose`) records for an exception of its own
    process, so that an exception is read one way wherever it is seen.
    """
    import time

    if not _state["lib"]:
        _state["lib"] = _library_dirs()
    return {
        "kind": "exception",
        "pid": os.getpid(),
        "time": time.time(),
        "thread": thread,
        "chain": _chain(value),
        "torch": _torch_context(value),
    }


def _record_exception(value, thread):
    """Write an `exception` record: the chain, the thread it ended, and torch's state when
    loaded."""
    if value is None or id(value) == _state["recorded"]:
        return
    if thread is None:
        _state["recorded"] = id(value)
    _write(exception_record(value, thread))
    _record_sample(value, None)


# ---- the sample a failure was loading ------------------------------------------------------------
# Functions that load, batch or transform samples (the same list as DATA_FUNCTIONS in
# judge/classify.py, which this file cannot import).
_ITEM_FUNCTIONS = ("__getitem__", "__getitems__")  # a dataset's item lookup
_DATA_FUNCTIONS = frozenset(
    (
        *_ITEM_FUNCTIONS,
        "__next__",
        "__iter__",
        "collate_fn",
        "collate",
        "default_collate",
        "load_sample",
        "load_image",
        "_load_image",
        "read_image",
        "parse_example",
    )
)
_MAX_CALLS = 6  # the innermost data functions of a stack
_MAX_ARGS = 8  # arguments kept per call
_MAX_LOCALS = 64  # locals looked at per call for file paths
_MAX_FILES = 4
_MAX_BELOW = 4  # frames under the innermost data function looked at for the file it loaded
_SHORT = 160  # characters of a string argument
_MAX_TENSOR = 50000000  # elements: a bigger tensor is not scanned at crash time
_SECRET_NAMES = ("pass", "secret", "token", "credential", "auth", "apikey", "api_key", "private")
_NONFINITE_WORDS = frozenset(("nan", "nans", "inf", "infs", "infinity", "finite", "nonfinite"))


def _is_data_code(code):
    """Does this code load, batch or transform a sample (a Dataset, a collate function, a
    transform, torch's fetcher)? torch's DataLoader iterator holds no sample: it is left out."""
    name = code.co_name
    file = code.co_filename
    if file == _OWN_FILE:  # the probe's own wrapper of the DataLoader's `__next__`
        return False
    if name in _DATA_FUNCTIONS:
        return not file.endswith("dataloader.py") or "torch" not in file
    if name == "fetch":
        return file.endswith("fetch.py") and "torch" in file
    if "transform" in name.lower():
        return True
    # JAX's and Flax's "transforms" are of functions (grad, jit, vmap), not of samples (a real
    # run's `nnx.value_and_grad` was named the sample that failed)
    lowered = file.lower().replace("\\", "/")
    if any(package in lowered for package in _FUNCTION_TRANSFORMS):
        return False
    return name in ("__call__", "forward") and "transform" in lowered


_FUNCTION_TRANSFORMS = ("/jax/", "/flax/", "/haiku/", "/equinox/")


# The packages whose `...Dataset` classes serve samples: torch's (every dataset of torchvision,
# MONAI and the like derives from it) and Hugging Face's; h5py's, netCDF4's or xarray's `Dataset`
# is an array's slicing (a real run's HDF5 slice was named the sample that failed)
_DATASET_ROOTS = ("torch", "datasets")


def _loads_samples(frame):
    """An item lookup in a library's code loads a sample only on a dataset (torchvision's
    ImageFolder, a Hugging Face Dataset: a torch or `datasets` class named `...Dataset` among
    its bases); pandas' `DataFrame.__getitem__` takes a column by its name, a dict's subclass a
    key. The program's own `__getitem__` is its dataset's, whatever it derives from."""
    code = frame.f_code
    if code.co_name not in _ITEM_FUNCTIONS or _is_user(code.co_filename):
        return True
    try:
        bases = type(frame.f_locals.get("self")).__mro__
        return any(
            base.__name__.endswith("Dataset") and base.__module__.split(".")[0] in _DATASET_ROOTS
            for base in bases
        )
    except Exception:
        return True


def _short(value):
    """A short description of one argument: the value of a number, a short string or a path, only
    the type and shape of anything else (never a tensor's contents)."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is float:
        return repr(value)
    if kind is str:
        return repr(value[:_SHORT]) + ("..." if len(value) > _SHORT else "")
    module = getattr(kind, "__module__", "") or ""
    if module.startswith("pathlib"):
        return repr(str(value)[:_SHORT])
    if module == "numpy" and kind.__name__.startswith(("int", "uint")):
        return repr(int(value))
    if kind is range:
        return repr(value)
    if kind in (list, tuple):
        head = list(value[:16])
        if all(type(v) is int for v in head):
            text = repr(head)
            if len(value) > len(head):
                text = text[:-1] + ", ...] (%d items)" % len(value)
            return text
        return "<%s of %d>" % (kind.__name__, len(value))
    if kind is dict:
        keys = [repr(k[:40]) for k in list(value)[:8] if type(k) is str]
        return "<dict: %s>" % ", ".join(keys) if keys else "<dict of %d>" % len(value)
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        try:
            return "<%s %s %s>" % (kind.__name__, list(shape), value.dtype)
        except Exception:
            pass
    return "<%s>" % _type_name(kind)


def _file_path(value):
    """The absolute path, when a str or pathlib argument or local names an existing file."""
    if type(value) is str:
        text = value
    elif (getattr(type(value), "__module__", "") or "").startswith("pathlib"):
        text = str(value)
    else:
        return None
    if not text or len(text) > 4096 or "\n" in text or "\x00" in text:
        return None
    if os.sep not in text and "." not in text:
        return None  # a bare word is a key, not a file: no stat for it
    try:
        if os.path.isfile(text):
            return os.path.abspath(text)
    except (OSError, ValueError):
        pass
    return None


def _secret_name(name):
    low = name.lower()
    return any(word in low for word in _SECRET_NAMES) or low.endswith("_key")


def _owner(obj):
    """The class of a data function's `self` (the Dataset), and how many arguments it needs."""
    kind = type(obj)
    owner = {"class": getattr(kind, "__qualname__", "?"), "module": kind.__module__}
    init = getattr(kind, "__init__", None)
    code = getattr(init, "__code__", None)
    if code is not None:
        owner["file"] = code.co_filename
        required = code.co_argcount - 1 - len(getattr(init, "__defaults__", None) or ())
        required += code.co_kwonlyargcount - len(getattr(init, "__kwdefaults__", None) or {})
        owner["required"] = max(required, 0)
    elif init is object.__init__:
        owner["required"] = 0
    return owner


def _call(frame, line, files):
    """One data function on the stack: its arguments (short descriptions) and, for a generator,
    the simple locals that hold its position; existing file paths among its locals go to
    `files`."""
    code = frame.f_code
    local = frame.f_locals
    count = code.co_argcount + code.co_kwonlyargcount
    count += bool(code.co_flags & 0x04) + bool(code.co_flags & 0x08)  # *args, **kwargs
    instance = _instance_name(code, local) or ("self" if "self" in local else None)
    names = [n for n in code.co_varnames[:count] if n not in ("self", "cls", instance)]
    if code.co_flags & 0x20:  # a generator (an IterableDataset's __iter__): its state is in locals
        names += [n for n in local if n not in names and type(local[n]) in (int, str)]
    args = {}
    for name in names:
        if name in local and not _secret_name(name) and len(args) < _MAX_ARGS:
            args[name] = _short(local[name])
    for name in list(local)[:_MAX_LOCALS]:
        if len(files) >= _MAX_FILES or _secret_name(name):
            continue
        path = _file_path(local[name])
        if path is not None and path not in files:
            files.append(path)
    call = {
        "function": code.co_name,
        "file": code.co_filename,
        "line": line,
        "user": _is_user(code.co_filename),
        "args": args,
    }
    if instance is not None and instance in local:
        call["owner"] = _owner(local[instance])
        if code.co_name in _ITEM_FUNCTIONS:
            # how many items the dataset says it has: a failing index at its end says `__len__`
            # counts one more than the data holds
            try:
                call["length"] = int(len(local[instance]))
            except Exception:
                pass
    return call


def _instance_name(code, local):
    """The name a method's instance goes by: `self`, or whatever the program called it (`def
    __getitem__(s, i)`, a real run whose failing sample read as the dataset object); None for a
    plain function."""
    try:
        if not code.co_argcount:
            return None
        first = code.co_varnames[0]
        if first == "self":
            return first
        method = getattr(type(local.get(first)), code.co_name, None)
        return first if getattr(method, "__code__", None) is code else None
    except Exception:
        return None


def _calls(exceptions):
    """The data functions on the stack of the first exception that has any, outermost first."""
    for exc in exceptions:
        calls = []
        files = []
        below = []  # the frames under the innermost data function: the loader it called
        tb = getattr(exc, "__traceback__", None)
        while tb is not None:
            if _is_data_code(tb.tb_frame.f_code) and _loads_samples(tb.tb_frame):
                calls.append((tb.tb_frame, tb.tb_lineno))
                below = []
            elif calls:
                below.append(tb.tb_frame)
            tb = tb.tb_next
        if calls:
            calls = calls[-_MAX_CALLS:]
            out = [_call(frame, line, files) for frame, line in reversed(calls)]
            out.reverse()
            if not files:
                files.extend(_loaded_file(below[:_MAX_BELOW]))
            return out, files
    return [], []


def _opened_name(value):
    """A path, or the path a file object was opened from: a loader may have opened its argument
    by the time it failed (PIL's `Image.open(fp)`), an image keeps the file it was read from
    (`Image.open(path).convert()` failing in `load(self)`)."""
    if type(value) is str:
        return value
    try:
        for attribute in ("name", "filename"):
            name = getattr(value, attribute, None)
            if type(name) is str:
                return name
    except Exception:
        pass
    return value


def _loaded_file(frames):
    """The existing file a loader under the data function was called with: a path given inline
    (`np.load(self.files[i])`, `Image.open(self.paths[i])`) is no local of `__getitem__` (a real
    run's truncated .npy was "sample 37", no file). The first path among the first frames'
    arguments, as a list of none or one."""
    for frame in frames:
        code = frame.f_code
        local = frame.f_locals
        for name in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]:
            if name in local and not _secret_name(name):
                path = _file_path(_opened_name(local[name]))
                if path is not None:
                    return [path]
    return []


def _cpu_tensor(value):
    """A torch tensor in host memory, small enough to scan (nothing is copied off a device)."""
    device = getattr(value, "device", None)
    return (
        getattr(device, "type", None) == "cpu"
        and hasattr(value, "dim")
        and (getattr(type(value), "__module__", "") or "").startswith("torch")
        and value.numel() <= _MAX_TENSOR
    )


def _rows(mask):
    """Positions along the batch dimension where a boolean mask holds anywhere."""
    rows = mask.reshape(mask.shape[0], -1).any(1) if mask.dim() > 1 else mask
    return rows.nonzero().flatten()[:16].tolist(), int(rows.sum())


def _bad_labels(exceptions):
    """For a class index out of range: which positions of the batch hold it, and the values."""
    for exc in exceptions:
        message = _message(exc)[:300]
        if "out of bounds" not in message and "out of range" not in message:
            continue
        for frame in _innermost_first(exc):
            local = frame.f_locals
            target, scores = local.get("target"), local.get("input")
            if not (_cpu_tensor(target) and _cpu_tensor(scores)) or target.dim() < 1:
                continue
            if target.is_floating_point():
                return None  # class probabilities, not indices
            classes = int(scores.shape[1] if scores.dim() >= 2 else scores.shape[0])
            ignore = local.get("ignore_index", -100)
            bad = ((target < 0) | (target >= classes)) & (target != ignore)
            positions, count = _rows(bad)
            return {
                "tensor": "target",
                "classes": classes,
                "positions": positions,
                "count": count,
                "values": target[bad].flatten()[:8].tolist(),
            }
    return None


def _nonfinite(exceptions):
    """For an error that speaks of NaN or Inf: the input tensors on its stack that hold some."""
    final = exceptions[-1] if exceptions else None
    text = "".join(c if c.isalnum() else " " for c in _message(final)[:2000].lower())
    if not _NONFINITE_WORDS.intersection(text.split()):
        return []
    return _nonfinite_inputs(frame for exc in exceptions for frame in _innermost_first(exc))


def _innermost_first(exc):
    """The frames of an exception's traceback, the one that raised it first."""
    frames = []
    tb = getattr(exc, "__traceback__", None)
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return reversed(frames)


def _nonfinite_inputs(frames, held=frozenset()):
    """The floating-point tensors in host memory that the frames' locals hold (directly, or in a
    list, tuple or dict of a batch) with NaN or Inf in them, at most four, and at which positions of
    their first (batch) dimension. Only inputs: a tensor an autograd operation made (`grad_fn`) or
    a parameter (`requires_grad`) is the model's, whose NaN says nothing of the data; so is one a
    module holds (`held`, the ids of its buffers)."""
    found = []
    seen = set(held)
    for frame in frames:
        for name, value in list(frame.f_locals.items())[:_MAX_LOCALS]:
            for label, tensor in _tensors_in(name, value):
                if id(tensor) in seen or len(found) >= 4 or not _cpu_tensor(tensor):
                    continue
                seen.add(id(tensor))
                if tensor.dim() < 1 or not tensor.is_floating_point():
                    continue
                if tensor.requires_grad or tensor.grad_fn is not None:
                    continue
                positions, count = _rows(~tensor.isfinite())
                if count:
                    found.append(
                        {
                            "name": label,
                            "function": frame.f_code.co_name,
                            "user": _is_user(frame.f_code.co_filename),
                            "shape": list(tensor.shape),
                            "positions": positions,
                            "count": count,
                        }
                    )
    return found


def _tensors_in(name, value):
    """(name, value) for a local, else its items one level down when it is a batch held as a
    list, tuple or dict (`batch[0]`, `inputs['pixel_values']`), at most 16 of them."""
    if isinstance(value, (list, tuple)):
        return [(f"{name}[{i}]", item) for i, item in enumerate(value[:16])]
    if isinstance(value, _collections_abc.Mapping):  # a dict, a BatchEncoding
        found = []
        for key, item in value.items():
            if len(found) == 16:
                break
            if isinstance(key, (str, int)):
                found.append((f"{name}[{key!r}]", item))
        return found
    return [(name, value)]


def _record_sample(value, where):
    """Write a `sample` record when the failing stack was loading data: the data functions'
    arguments, the files they named, and the batch positions of bad labels or NaN/Inf inputs.
    `where` is torch's ExceptionWrapper's ("in DataLoader worker process 2"), or None."""
    try:
        import time

        exceptions = _exceptions(value)
        calls, files = _calls(exceptions)
        labels = _bad_labels(exceptions)
        nonfinite = _nonfinite(exceptions)
        if not (calls or labels or nonfinite):
            return
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = None
        _write(
            {
                "kind": "sample",
                "pid": os.getpid(),
                "time": time.time(),
                "where": where,
                "type": _type_name(type(value)),
                "message": _message(value)[:500],
                "cwd": cwd,
                "calls": calls,
                "files": files,
                "labels": labels,
                "nonfinite": nonfinite,
            }
        )
    except Exception:
        pass


def _make_wrapper_init(original):
    def __init__(self, *args, **kwargs):
        """torch's ExceptionWrapper, built where a DataLoader worker (or the pin-memory thread)
        caught an exception: the exception reaches the main process only as text, so its sample
        is recorded here, while its frames are still alive."""
        original(self, *args, **kwargs)
        try:
            exc_info = args[0] if args else kwargs.get("exc_info")
            where = args[1] if len(args) > 1 else kwargs.get("where")
            value = (exc_info or sys.exc_info())[1]
            if value is not None:
                _record_sample(value, None if where is None else str(where))
        except Exception:
            pass

    return __init__


def _without_own_frames(value):
    """Take the probe's own wrappers (a save's, the DataLoader's `__next__`) out of the traceback
    of an exception and of those chained to it, so that it prints and records as it would have
    without the probe: an exception passing through a wrapper gains the wrapper's frame."""
    seen = set()
    while value is not None and id(value) not in seen:
        seen.add(id(value))
        tb = value.__traceback__
        if tb is not None:
            kept = _own_frames_left_out(tb)
            if kept is not tb:
                value.__traceback__ = kept
        value = value.__cause__ or value.__context__


def _hook_traceback(module):
    """The program's own printing of an exception (`traceback.print_exc`, `format_exc`, logging's
    `exception()`, the reports of torch.multiprocessing's spawn and torchrun's `@record`) shows it
    as it would without the probe: the wrappers' frames taken out first, as the excepthook does.
    So does a stack it prints (`print_stack`, `format_stack`: autograd's anomaly mode records the
    forward call's that way), which passes through a wrapper that calls the program's code (the
    DataLoader's `__next__` calls a dataset's `__getitem__`, Lightning's `fit` its hooks)."""
    _replace_once(getattr(module, "TracebackException", None), "__init__", _make_traceback_init)
    summary = getattr(module, "StackSummary", None)
    extract = getattr(summary, "__dict__", {}).get("extract")
    if isinstance(extract, classmethod) and not getattr(extract.__func__, "_trainwatch", False):
        made = _dressed_as(extract.__func__, _make_stack_extract(extract.__func__))
        summary.extract = classmethod(made)


def _make_traceback_init(original):
    def __init__(self, exc_type, exc_value, exc_traceback, *args, **kwargs):
        try:
            if exc_value is not None and exc_traceback is exc_value.__traceback__:
                _without_own_frames(exc_value)
                exc_traceback = exc_value.__traceback__
            elif exc_traceback is not None:
                # a part of the traceback the program chose (Hydra prints its job's frames only)
                exc_traceback = _own_frames_left_out(exc_traceback)
        except Exception:
            pass
        original(self, exc_type, exc_value, exc_traceback, *args, **kwargs)

    return __init__


def _own_frames_left_out(tb):
    """A traceback (or the part of one a program prints) without the probe's wrapper frames."""
    import types

    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    if not any(e.tb_frame.f_code.co_filename == _OWN_FILE for e in entries):
        return entries[0] if entries else None
    rebuilt = None
    for e in reversed(entries):
        if e.tb_frame.f_code.co_filename != _OWN_FILE:
            rebuilt = types.TracebackType(rebuilt, e.tb_frame, e.tb_lasti, e.tb_lineno)
    return rebuilt


def _make_stack_extract(original):
    def extract(klass, frame_gen, *args, **kwargs):
        kept = ((frame, line) for frame, line in frame_gen if frame.f_code.co_filename != _OWN_FILE)
        return original(klass, kept, *args, **kwargs)

    return extract


def _hook_keras_traceback(module):
    """Keras filters its own frames out of a traceback, and keeps the innermost when it would keep
    none; a wrapper's frame between its frames (a save called by ModelCheckpoint) is kept instead,
    and the frame that raised is lost. Its filter takes the probe's file for one of its own."""
    excluded = getattr(module, "_EXCLUDED_PATHS", None)
    if isinstance(excluded, tuple) and _OWN_FILE not in excluded:
        module._EXCLUDED_PATHS = (*excluded, _OWN_FILE)


def _make_excepthook(previous):
    def excepthook(exc_type, value, tb):
        """Record an uncaught exception, then let the previous hook print it as usual. It stands
        as `sys.__excepthook__` too (see _install), so an exception printed through that, handled,
        is not one that ended the run: the interpreter names its uncaught one in `sys.last_value`
        before it calls the hook."""
        try:
            try:
                _without_own_frames(value)
                tb = value.__traceback__
            except Exception:
                pass
            try:
                if value is getattr(sys, "last_value", None) or value is getattr(
                    sys, "last_exc", None
                ):
                    _record_exception(value, None)
            except Exception:
                pass
        except KeyboardInterrupt:
            # A second Ctrl-C while the program already dies of this exception: Python's own hook
            # (C code) prints through it, and the program ends the same; ours would print its own
            # traceback ("Error in sys.excepthook") and lose the program's. It stops nothing more.
            pass
        return previous(exc_type, value, tb)

    return excepthook


def _make_thread_excepthook(previous):
    def thread_excepthook(args):
        """Record an exception that ended a thread (SystemExit ends a thread silently), then print
        as usual."""
        try:
            if args.exc_value is not None:
                _without_own_frames(args.exc_value)
                # the same type (the default hook takes no other): a structseq from a sequence
                args = type(args)(
                    (args.exc_type, args.exc_value, args.exc_value.__traceback__, args.thread)
                )
        except Exception:
            pass
        try:
            if args.exc_type is not SystemExit:
                name = getattr(args.thread, "name", None) if args.thread is not None else None
                _record_exception(args.exc_value, name or "<unknown thread>")
        except Exception:
            pass
        return previous(args)

    return thread_excepthook


def _install_thread_hook(threading):
    try:
        threading.excepthook = _make_thread_excepthook(threading.excepthook)
    except Exception:
        pass


# ---- checkpoints ---------------------------------------------------------------------------------
# Keys of a saved dict that say where training was ("epoch", "global_step"), as the record names
# them; the first one found of each name wins.
_PROGRESS_KEYS = (
    ("epoch", "epoch"),
    ("global_step", "step"),
    ("step", "step"),
    ("iteration", "step"),
    ("iter", "step"),
)
_MAX_SIZE_ENTRIES = 2000  # files summed for a checkpoint directory's size


def _number(value):
    return value if type(value) in (int, float) else None


def _path_of(target):
    """The absolute path a save writes to: a str or path-like, or an open file's name; None for an
    in-memory buffer (then the save is not a checkpoint on disk)."""
    if isinstance(target, (str, bytes)) or hasattr(target, "__fspath__"):
        path = os.fspath(target)
    else:
        path = getattr(target, "name", None)
    if isinstance(path, bytes):
        path = path.decode("utf-8", "surrogateescape")
    if not isinstance(path, str) or not path:
        return None
    return os.path.abspath(path)


def _progress_of(obj):
    """Epoch and step from the top-level keys of a saved dict (what most training loops save)."""
    progress = {}
    if isinstance(obj, dict):
        for key, name in _PROGRESS_KEYS:
            value = _number(obj.get(key))
            if value is not None and name not in progress:
                progress[name] = value
    return progress


# The top-level keys of a saved dict that hold a model's (or a trainer's) state, and the key
# endings of a state_dict's own entries (`fc.weight`, `bn.running_mean`).
_STATE_KEYS = (
    "model",
    "net",
    "optim",
    "state",
    "epoch",
    "step",
    "iter",
    "ema",
    "weights",
    "params",
)
_STATE_DICT_ENDINGS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _holds_training_state(obj):
    """Is what torch.save writes a checkpoint: a module, a state_dict, or a dict holding one (or a
    trainer's epoch and step)? A tensor, or a dict of data (`{"x": ..., "y": ...}`, a dataset
    cache), is not. Looks at the top-level keys only: a save must not be slowed."""
    if hasattr(obj, "state_dict") and hasattr(obj, "parameters"):
        return True  # an nn.Module saved whole
    if not isinstance(obj, dict):
        return False
    for key in obj:
        if not isinstance(key, str):
            return False
        lowered = key.lower()
        if lowered.endswith(_STATE_DICT_ENDINGS) or any(word in lowered for word in _STATE_KEYS):
            return True
    return False


def _size(path):
    """Bytes at `path` now: a file's size, or the sum of the files in a directory (two levels)."""
    try:
        if not os.path.isdir(path):
            return os.stat(path).st_size
        total, count, pending = 0, 0, [(path, 0)]
        while pending and count < _MAX_SIZE_ENTRIES:
            where, depth = pending.pop()
            for entry in os.scandir(where):
                count += 1
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                elif depth < 1 and entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, depth + 1))
        return total
    except OSError:
        return None


def _save_begin(api, target):
    """Note a save starting; write its `begin` record unless it runs inside another save (Lightning
    saves through torch.save to a buffer). Returns the record, or None."""
    import _thread
    import time

    thread = _thread.get_ident()
    depth = _state["saving"].get(thread, 0)
    _state["saving"][thread] = depth + 1
    if depth:
        return None
    path, progress = target()
    if path is None:
        return None
    _state["seq"] += 1
    record = {
        "kind": "checkpoint",
        "pid": os.getpid(),
        "seq": _state["seq"],
        "state": "begin",
        "time": time.time(),
        "api": api,
        "path": path,
    }
    record.update(progress)
    _write(record)
    return record


def _save_end(record, error):
    """Note a save ending; write its `end` record (with the size on disk) or its `failed` one."""
    import _thread
    import time

    thread = _thread.get_ident()
    depth = _state["saving"].get(thread, 1) - 1
    if depth > 0:
        _state["saving"][thread] = depth
    else:
        _state["saving"].pop(thread, None)
    if record is None:
        return
    record = dict(record, time=time.time())
    if error is None:
        size = None if record.get("open_file") else _size(record["path"])
        record.update(state="end", size=size)
    else:
        record.update(state="failed", error=_type_name(type(error)))
    _write(record)


def _make_save(original, api, target_of):
    """Wrap a save function; `target_of(args, kwargs)` gives (path or None, progress) of a call."""

    def save(*args, **kwargs):
        __tracebackhide__ = True
        record = None
        try:
            record = _save_begin(api, lambda: target_of(args, kwargs))
        except Exception:
            pass
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            try:
                _save_end(record, exc)
            except Exception:
                pass
            raise
        try:
            _save_end(record, None)
        except Exception:
            pass
        return result

    return save


# Every wrapper the program's exceptions pass through sets `__tracebackhide__`: IPython (a
# notebook's traceback) and pytest leave such frames out, as the hooked traceback module does for
# plain Python (a real notebook run showed the probe's DataLoader wrapper in its traceback).
def _replace_once(owner, name, make):
    """Replace `owner.name` (a module's function or a class's method) by `make(original)`, dressed
    as the original; once: a name the probe already replaced is left as it is."""
    original = getattr(owner, name, None)
    if original is not None and not getattr(original, "_trainwatch", False):
        setattr(owner, name, _dressed_as(original, make(original)))


def _dressed_as(original, wrapper):
    """The wrapper, named as the original and marked as the probe's (`inspect.signature` follows
    `__wrapped__`: Lightning reads a DataLoader's arguments from its `__init__`'s)."""
    for name in ("__name__", "__qualname__", "__doc__", "__module__"):
        try:
            setattr(wrapper, name, getattr(original, name))
        except (AttributeError, TypeError):
            pass
    wrapper.__wrapped__ = original
    wrapper._trainwatch = True
    return wrapper


def _argument(args, kwargs, index, name):
    return args[index] if len(args) > index else kwargs.get(name)


def _torch_save_target(args, kwargs):
    obj = _argument(args, kwargs, 0, "obj")
    if not _holds_training_state(obj):
        return None, {}  # a tensor or a data sample cached to disk: no checkpoint
    target = _argument(args, kwargs, 1, "f")
    progress = _progress_of(obj)
    if not (isinstance(target, (str, bytes)) or hasattr(target, "__fspath__")):
        progress["open_file"] = True  # the program's own file object: flushed when it says so
    return _path_of(target), progress


def _safetensors_target(args, kwargs):
    return _path_of(_argument(args, kwargs, 1, "filename")), {}


def _lightning_target(args, kwargs):
    trainer = args[0]
    progress = {
        "epoch": _number(getattr(trainer, "current_epoch", None)),
        "step": _number(getattr(trainer, "global_step", None)),
    }
    path = _path_of(_argument(args, kwargs, 1, "filepath"))
    return path, {k: v for k, v in progress.items() if v is not None}


def _hf_progress(trainer):
    state = getattr(trainer, "state", None)
    progress = {
        "epoch": _number(getattr(state, "epoch", None)),
        "step": _number(getattr(state, "global_step", None)),
    }
    return {k: v for k, v in progress.items() if v is not None}


def _hf_checkpoint_target(args, kwargs):
    """transformers' Trainer._save_checkpoint(model, trial): `<output_dir>/checkpoint-<step>`."""
    trainer = args[0]
    trial = _argument(args, kwargs, 2, "trial")
    progress = _hf_progress(trainer)
    try:
        run_dir = trainer._get_output_dir(trial=trial)
    except Exception:
        run_dir = getattr(getattr(trainer, "args", None), "output_dir", None)
    if not isinstance(run_dir, str) or "step" not in progress:
        return None, progress
    return _path_of(os.path.join(run_dir, "checkpoint-%d" % progress["step"])), progress


def _hf_save_model_target(args, kwargs):
    trainer = args[0]
    output = _argument(args, kwargs, 1, "output_dir")
    if output is None:
        output = getattr(getattr(trainer, "args", None), "output_dir", None)
    return _path_of(output) if output is not None else None, _hf_progress(trainer)


def _pretrained_target(args, kwargs):
    return _path_of(_argument(args, kwargs, 1, "save_directory")), {}


def _wrap(owner, name, api, target_of):
    """Replace `owner.name` (a module's function or a class's method) by a recording save. The
    first save a process can be seen making is noted: a run that loaded none (an XGBoost or a JAX
    run) is not told that no checkpoint was seen as if it had saved none."""
    _replace_once(owner, name, lambda original: _make_save(original, api, target_of))
    if not _state["saves_watched"] and getattr(owner, name, None) is not None:
        _state["saves_watched"] = True
        _write({"kind": "saves-watched", "pid": os.getpid(), "api": api})


def _hook_torch(torch):
    """torch.save, torch's ExceptionWrapper (a DataLoader worker's failing sample), and the
    DataLoader's passes."""
    original = getattr(torch, "save", None)
    _wrap(torch, "save", "torch.save", _torch_save_target)
    serialization = getattr(torch, "serialization", None)
    if serialization is not None and getattr(serialization, "save", None) is original:
        serialization.save = torch.save
    wrapper = getattr(getattr(torch, "_utils", None), "ExceptionWrapper", None)
    _replace_once(wrapper, "__init__", _make_wrapper_init)
    _hook_dataloader(torch)
    _replace_once(getattr(torch, "Tensor", None), "backward", _make_backward(torch))
    optimizer = getattr(getattr(torch, "optim", None), "Optimizer", None)
    _replace_once(optimizer, "__init__", _counting_builds(_gradients, "optimizers"))


# A loss that turns NaN or Inf: the batch it was computed from may hold NaN already (a data problem,
# not a numerical one). At the first such losses (a few: a mixed-precision run's scaled loss is Inf
# now and then, by design) the stack that called `backward` is searched for input tensors holding
# NaN/Inf; the first find is recorded.
_MAX_LOSS_SCANS = 8


def _make_backward(torch):
    compiler = getattr(torch, "compiler", None)
    compiling = getattr(compiler, "is_compiling", None) or (lambda: False)

    def make(original):
        def backward(self, *args, **kwargs):
            __tracebackhide__ = True
            if not compiling():
                _gradients["backwards"] += 1
                if self.grad_fn is None and self.requires_grad:
                    _gradients["leaf_losses"] += 1
                _check_loss(self, sys._getframe(1))
            return original(self, *args, **kwargs)

        return backward

    return make


def _check_loss(loss, caller):
    """At a loss that is not finite, search the stack that called `backward` for input tensors
    holding NaN/Inf and record them (`nonfinite`). Only a one-element loss in host memory is read:
    reading one on a GPU would wait for the device at every step."""
    try:
        if not (loss.is_cpu and loss.numel() == 1 and loss.is_floating_point()):
            return
        value = loss.item()
        if value - value == 0:  # finite (Inf - Inf and NaN - NaN are NaN): ~0.6 µs a step
            if _gradients["last_nonfinite"]:
                _gradients["last_nonfinite"] = 0
                _note_losses()
            return
        # counted at every step: a run whose loss stayed NaN to its end, though it printed none
        # (a tracker took the values) differs from a mixed-precision run that skipped a few
        _gradients["nonfinite_losses"] += 1
        turned = not _gradients["last_nonfinite"]
        _gradients["last_nonfinite"] = 1
        if turned or _gradients["nonfinite_losses"] == 2:
            _note_losses()
        if _state["loss_scans"] >= _MAX_LOSS_SCANS:
            return
        _state["loss_scans"] += 1
        frames = []
        while caller is not None and len(frames) < _MAX_FRAMES:
            frames.append(caller)
            caller = caller.f_back
        # weights already NaN or Inf make every tensor computed from them so (a TD target from a
        # diverged network, detached): the model's blow-up, not the data's (a real run's DQN)
        weights_nonfinite, held = _models_in(frames)
        found = [] if weights_nonfinite else _nonfinite_inputs(frames, held)
        if found:
            import time

            _state["loss_scans"] = _MAX_LOSS_SCANS
            _write(
                {
                    "kind": "nonfinite",
                    "pid": os.getpid(),
                    "time": time.time(),
                    "loss": repr(value),
                    "nonfinite": found,
                }
            )
    except Exception:
        pass


# The counts so far are written where the losses turn non-finite or back (and at the second
# non-finite one), at most this many times a process: a process that never reaches its exit
# handlers (a notebook kernel shut down by its runner, os._exit, SIGKILL) still tells how its
# losses ended. The record at exit, when there is one, has the last word.
_MAX_LOSS_NOTES = 16


def _note_losses():
    if _state["loss_notes"] >= _MAX_LOSS_NOTES:
        return
    _state["loss_notes"] += 1
    _write(dict(_gradients, kind="gradients-so-far", pid=os.getpid()))


def _models_in(frames):
    """Does a model the frames' locals hold (a module, or `self` in its method) have a parameter in
    host memory holding NaN or Inf? And the ids of the buffers those modules hold (a loss's class
    `weight`, a normaliser's statistics; their parameters are read here already), no batch of
    data even where a local names them (a real run's `CrossEntropyLoss(weight=w)` with
    `w = 1 / counts` and a class of count 0, read as NaN inputs). At most four models are read,
    only at a non-finite loss."""
    module_type = getattr(getattr(sys.modules.get("torch"), "nn", None), "Module", None)
    held = set()
    if module_type is None:
        return False, held
    seen = set()
    for frame in frames:
        for value in list(frame.f_locals.values())[:_MAX_LOCALS]:
            if not isinstance(value, module_type) or id(value) in seen:
                continue
            seen.add(id(value))
            for parameter in value.parameters():
                if _cpu_tensor(parameter) and not bool(parameter.detach().isfinite().all()):
                    return True, held
            held.update(id(buffer) for buffer in value.buffers())
            if len(seen) == 4:
                return False, held
    return False, held


# The optimizers built and the gradients computed (calls of `Tensor.backward`): a run that built
# an optimizer and never computed a gradient trained nothing, however it fed its model (batches
# sliced from tensors by hand take nothing from a DataLoader).
# Of the losses `backward` was called on (one-element, in host memory), how many were NaN or Inf,
# and whether the latest was. And how many were leaves (a tensor that requires a gradient but was
# computed from nothing: `torch.tensor(loss.item(), requires_grad=True)`): backward through one
# reaches no weight of the model.
_GRADIENTS_AT_START = {
    "optimizers": 0,
    "backwards": 0,
    "nonfinite_losses": 0,
    "last_nonfinite": 0,
    "leaf_losses": 0,
}
_gradients = dict(_GRADIENTS_AT_START)


# The DataLoader's passes that ended, the batches they gave, and the first that gave none: a
# dataset smaller than one batch with drop_last, or an empty one, trains on nothing without a word.
# And the DataLoaders built, and the batches taken from any of them, ended passes or not: a loop
# that never started (its epochs already done on resume, `max_epochs=0`) takes none at all.
_PASSES_AT_START = {
    "ended": 0,
    "batches": 0,
    "empty": 0,
    "first_empty": None,
    "built": 0,
    "taken": 0,
}
_passes = dict(_PASSES_AT_START)


def _hook_dataloader(torch):
    """Count the DataLoaders built, the batches taken, and the passes over a DataLoader as they
    end (its iterator's StopIteration), with the batches each gave (torch's own count,
    `_num_yielded`, which a new pass resets)."""
    data = getattr(getattr(torch, "utils", None), "data", None)
    _replace_once(getattr(data, "DataLoader", None), "__init__", _counting_builds(_passes, "built"))
    # Each iterator's `_next_data`, under torch's `__next__`, not `__next__` itself: a warning that
    # `__next__` gives about its caller's line (`stacklevel=2`, an IterableDataset's length
    # overrun) must still name the program's line, not the probe's (a real run's 60 warnings named
    # sitecustomize.py).
    module = getattr(data, "dataloader", None)
    for name in ("_SingleProcessDataLoaderIter", "_MultiProcessingDataLoaderIter"):
        _replace_once(getattr(module, name, None), "_next_data", _counting_next)


def _counting_builds(counts, key):
    """A maker of `__init__` wrappers that count, in `counts[key]`, the objects built (DataLoaders,
    optimizers)."""

    def make(init):
        def __init__(self, *args, **kwargs):
            __tracebackhide__ = True
            init(self, *args, **kwargs)
            counts[key] += 1

        return __init__

    return make


def _counting_next(original):
    def _next_data(self):
        __tracebackhide__ = True
        # torch counts a batch given (`_num_yielded`) after this returns it
        first = getattr(self, "_num_yielded", None) == 0
        try:
            batch = original(self)
        except StopIteration:
            _pass_ended(self)
            raise
        if first:  # a pass's first batch: whose pass is it?
            _mark_sanity_check(self)
        if not getattr(self, "_trainwatch_sanity", False):
            _passes["taken"] += 1
        return batch

    return _next_data


# Lightning's sanity check: validation batches taken before training starts
# (`num_sanity_val_steps`), which are no training (a fit with `limit_train_batches=0` takes two of
# them and trains nothing)
_SANITY_CHECK = "_run_sanity_check"
_SANITY_DEPTH = 30  # the frames between the DataLoader's __next__ and the Trainer's method


def _mark_sanity_check(iterator):
    """Mark a pass that Lightning's sanity check takes, from the frames above its first batch."""
    try:
        frame = sys._getframe(2)
        for _ in range(_SANITY_DEPTH):
            if frame is None:
                break
            if frame.f_code.co_name == _SANITY_CHECK:
                iterator._trainwatch_sanity = True
                return
            frame = frame.f_back
        iterator._trainwatch_sanity = False
    except Exception:
        pass


def _pass_ended(iterator):
    try:
        pass_ = getattr(iterator, "_sampler_iter", None)
        if getattr(iterator, "_trainwatch_counted", None) is pass_:
            return  # next() again on a pass already ended
        if getattr(iterator, "_trainwatch_sanity", False):
            return  # Lightning's sanity check: no training pass
        yielded = getattr(iterator, "_num_yielded", None)
        if not isinstance(yielded, int):
            return  # an iterator that does not count its batches as torch's do
        iterator._trainwatch_counted = pass_
        _passes["ended"] += 1
        _passes["batches"] += yielded
        if yielded == 0:
            _passes["empty"] += 1
            if _passes["first_empty"] is None:
                import time

                _passes["first_empty"] = dict(_loader_shape(iterator), at=time.time())
    except Exception:
        pass


def _loader_shape(iterator):
    """What an empty pass read: the dataset's class and length, the batch size, drop_last (and,
    added where it is recorded, when it ended)."""
    dataset = getattr(iterator, "_dataset", None)
    try:
        size = len(dataset)
    except Exception:
        size = None
    return {
        "dataset": type(dataset).__name__,
        "size": size if isinstance(size, int) else None,
        "batch_size": getattr(getattr(iterator, "_index_sampler", None), "batch_size", None),
        "drop_last": bool(getattr(iterator, "_drop_last", False)),
    }


def _hook_safetensors(module):
    _wrap(module, "save_file", "safetensors", _safetensors_target)
    _wrap(module, "save_model", "safetensors", _safetensors_target)


def _hook_lightning(module):
    trainer = getattr(module, "Trainer", None)
    _wrap(trainer, "save_checkpoint", "lightning", _lightning_target)
    _replace_once(trainer, "fit", lambda original: _make_fit(original, _lightning_stop))


def _hook_hf_trainer(module):
    trainer = getattr(module, "Trainer", None)
    _wrap(trainer, "_save_checkpoint", "transformers", _hf_checkpoint_target)
    _wrap(trainer, "save_model", "transformers", _hf_save_model_target)


def _hook_hf_model(module):
    model = getattr(module, "PreTrainedModel", None)
    _wrap(model, "save_pretrained", "transformers", _pretrained_target)


def _hook_keras(module):
    """Keras's `Model.save` and `save_weights`, which its ModelCheckpoint calls (Keras 3's
    `keras.src.models.model`, Keras 2's `engine.training`)."""
    model = getattr(module, "Model", None)
    _wrap(model, "save", "keras", _keras_target)
    _wrap(model, "save_weights", "keras-weights", _keras_target)
    _replace_once(model, "fit", lambda original: _make_fit(original, _keras_stop))


def _keras_target(args, kwargs):
    return _path_of(_argument(args, kwargs, 1, "filepath")), _keras_epochs_done()


# How far up the stack Keras's ModelCheckpoint is looked for from a save (the probe's own frames,
# then `Model.save`'s caller)
_KERAS_CALLER_DEPTH = 8


def _keras_epochs_done():
    """The epochs done when Keras's ModelCheckpoint saved: its `_save_model(epoch, batch, logs)`
    gets the epoch's index, and a batch only for a save within the epoch (a real run's resume line
    read `initial_epoch=<the epochs done>` for `ep05.keras`). Empty for the program's own save."""
    frame = sys._getframe(1)
    for _ in range(_KERAS_CALLER_DEPTH):
        if frame is None:
            break
        local = frame.f_locals
        if frame.f_code.co_name == "_save_model" and type(local.get("epoch")) is int:
            return {"epoch": local["epoch"] + (local.get("batch") is None)}
        frame = frame.f_back
    return {}


# A framework's training loop that returned because a callback set its stop flag (Keras's
# `stop_training`, Lightning's `should_stop`) ended short of its epochs on purpose: early stopping
# that said nothing (Keras's EarlyStopping is silent by default) is no `break`. The callback that
# stopped it is the one whose `stopped_epoch` is set.
def _make_fit(original, stop_of):
    def fit(*args, **kwargs):
        __tracebackhide__ = True
        result = original(*args, **kwargs)
        try:
            stopped = stop_of(args, kwargs, result)
            if stopped is not None:
                import time

                _write(dict(stopped, kind="fit-stopped", pid=os.getpid(), time=time.time()))
        except Exception:
            pass
        return result

    return fit


def _stopper(callbacks):
    """(class name, reason) of the callback that stopped training: one that says why in
    `stopped_for` (trainwatch's own, at a non-finite loss), else one with a `stopped_epoch` above 0
    (EarlyStopping); (None, None) when none says so."""
    callbacks = list(callbacks or ())
    for callback in callbacks:
        reason = getattr(callback, "stopped_for", None)
        if isinstance(reason, str) and reason:
            return type(callback).__name__, reason
    for callback in callbacks:
        epoch = getattr(callback, "stopped_epoch", 0)
        if isinstance(epoch, int) and epoch > 0:
            return type(callback).__name__, None
    return None, None


def _keras_stop(args, kwargs, history):
    model = args[0] if args else None
    if getattr(model, "stop_training", False) is not True:
        return None
    done = getattr(history, "epoch", None)
    epochs = _argument(args, kwargs, 4, "epochs")
    by, reason = _stopper(_argument(args, kwargs, 6, "callbacks"))
    return {
        "framework": "keras",
        "by": by,
        "reason": reason,
        "epoch": len(done) if isinstance(done, list) else None,
        "epochs": epochs if isinstance(epochs, int) else None,
    }


def _lightning_stop(args, kwargs, _result):
    trainer = args[0] if args else None
    if getattr(trainer, "should_stop", False) is not True or getattr(trainer, "interrupted", False):
        return None
    epoch = getattr(trainer, "current_epoch", None)
    epochs = getattr(trainer, "max_epochs", None)
    by, reason = _stopper(getattr(trainer, "callbacks", ()))
    return {
        "framework": "lightning",
        "by": by,
        "reason": reason,
        "epoch": epoch if isinstance(epoch, int) else None,
        "epochs": epochs if isinstance(epochs, int) and epochs > 0 else None,
    }


# Modules hooked when the program imports them (never imported by the probe: importing threading
# costs ~1 ms, torch seconds).
_HOOKS = {
    "threading": _install_thread_hook,
    "traceback": _hook_traceback,
    "keras.src.utils.traceback_utils": _hook_keras_traceback,
    "keras.utils.traceback_utils": _hook_keras_traceback,
    "tf_keras.src.utils.traceback_utils": _hook_keras_traceback,
    "torch": _hook_torch,
    "safetensors.torch": _hook_safetensors,
    "pytorch_lightning.trainer.trainer": _hook_lightning,
    "lightning.pytorch.trainer.trainer": _hook_lightning,
    "transformers.trainer": _hook_hf_trainer,
    "transformers.modeling_utils": _hook_hf_model,
    "keras.src.models.model": _hook_keras,
    "keras.src.engine.training": _hook_keras,
    "keras.engine.training": _hook_keras,
    "tf_keras.src.engine.training": _hook_keras,
}


def _hook(name, module):
    try:
        _HOOKS[name](module)
    except Exception:
        pass


_IMPORTLIB_EXTERNAL = "<frozen importlib._bootstrap_external>"  # the file CPython trims as its own


class _ImportWatcher:
    """Hooks a module of `_HOOKS` right after the program imports it: the finder lends another
    finder's spec, with the loader's `exec_module` wrapped once."""

    def find_spec(self, name, path=None, target=None):
        if name not in _HOOKS:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            # a class-level loader (frozen) cannot be patched per module: leave it unhooked
            return spec
        original = loader.exec_module

        def exec_module(module):
            __tracebackhide__ = True
            try:
                del loader.exec_module  # the loader goes back to what it was
            except AttributeError:
                pass
            original(module)
            _hook(name, module)

        try:
            # Python trims a failed import's traceback of importlib's own frames, in runs that end
            # at `_call_with_frames_removed`; a wrapper frame from another file would break the run
            # and leave three `<frozen importlib._bootstrap>` frames in the program's stderr that
            # it does not print bare (a real run: a local numpy.py that broke `import torch`)
            exec_module.__code__ = exec_module.__code__.replace(co_filename=_IMPORTLIB_EXTERNAL)
        except Exception:
            pass
        loader.exec_module = exec_module
        return spec


def _note_exit(code, caller, handled=None):
    """An exit asked for with a status (sys.exit, the builtin `exit`, a SystemExit raised): its
    code and the caller's stack, written at interpreter exit (it may yet be caught)."""
    try:
        if code is not None and code != 0:
            frames, _ = _frames(frame=caller)
            # called in an `except` block: the exception it handled is the exit's context,
            # as Python's own "During handling of the above exception" (an out-of-memory
            # error caught, printed and turned into `sys.exit(1)`)
            if handled is None:
                handled = sys.exc_info()[1]
            _state["exit"] = {
                "code": code if isinstance(code, int) else _message(code),
                "frames": frames,
                "during": _chain(handled) if handled is not None else [],
            }
    except Exception:
        pass


def _make_exit(original):
    def exit(*args):
        """sys.exit, noting the code and the caller's stack."""
        __tracebackhide__ = True
        _note_exit(args[0] if args else None, sys._getframe(1))
        return original(*args)

    exit.__doc__ = original.__doc__
    return exit


class _BuiltinExit(object):
    """The builtin `exit` and `quit` (site's Quitter objects), noting the code as sys.exit's
    wrapper does; shown and called as the original (`exit` typed at a prompt prints its hint)."""

    def __init__(self, original):
        self._original = original

    def __repr__(self):
        return repr(self._original)

    def __call__(self, code=None):
        __tracebackhide__ = True
        _note_exit(code, sys._getframe(1))
        return self._original(code)


# sys.monitoring's tool id for the probe (Python 3.12+): ids 3 and 4 belong to no tool that Python
# names (0 debugger, 1 coverage, 2 profiler, 5 optimizer), so the probe stays out of their way
_MONITOR_TOOL = 4


def _watch_raised_exits():
    """Note a SystemExit the program raises itself (`raise SystemExit(1)` in an `except` block),
    which passes through no exit wrapper: Python 3.12's sys.monitoring reports each raise (a call
    per exception, none per line or call); older Pythons give no hook for it."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return
    try:
        if monitoring.get_tool(_MONITOR_TOOL) is not None:
            return
        monitoring.use_tool_id(_MONITOR_TOOL, "trainwatch")
        monitoring.register_callback(_MONITOR_TOOL, monitoring.events.RAISE, _raised)
        monitoring.set_events(_MONITOR_TOOL, monitoring.events.RAISE)
    except Exception:
        pass


def _raised(code, offset, exception):
    """sys.monitoring's RAISE callback: a SystemExit raised outside the exit wrappers (which noted
    theirs: sys.exit raises in the probe's wrapper, the builtin `exit` in _sitebuiltins). Python
    reports the exception again in each frame it leaves: the first, where it was raised, counts;
    its context is the exception the `except` block handled."""
    if not isinstance(exception, SystemExit) or id(exception) == _state.get("raised_exit"):
        return
    _state["raised_exit"] = id(exception)
    if not code.co_filename.endswith((_OWN_FILE, "_sitebuiltins.py")):
        _note_exit(exception.code, sys._getframe(1), exception.__context__)


def _at_exit():
    """At normal interpreter shutdown: an uncaught exception a replaced excepthook hid, and how
    Python exited."""
    try:
        last = getattr(sys, "last_value", None)
        if last is not None:
            _record_exception(last, None)
        import time

        if _passes["ended"] or _passes["built"]:
            _write(dict(_passes, kind="loader", pid=os.getpid()))
        if _gradients["optimizers"] or _gradients["backwards"]:
            _write(dict(_gradients, kind="gradients", pid=os.getpid()))
        _write(
            {"kind": "exit", "pid": os.getpid(), "time": time.time(), "sys_exit": _state["exit"]}
        )
    except Exception:
        pass
    except KeyboardInterrupt:
        # a Ctrl-C during shutdown: the interpreter exits the same either way, and its report of
        # an interrupted callback would print the probe's own frames into the program's output
        pass


def _install():
    """Set the probe up in this process; any failure leaves the process exactly as it would be
    without us."""
    global _RECORDS_DIR
    _RECORDS_DIR = os.path.abspath(_RECORDS_DIR)
    try:
        _state["stack_signal"] = int(os.environ.get("TRAINWATCH_PROBE_SIGNAL") or 0)
    except ValueError:
        _state["stack_signal"] = 0
    _state["lib"] = _library_dirs()
    import faulthandler

    # Already enabled (-X faulthandler, PYTHONFAULTHANDLER): the user's setting stands, tracebacks
    # go where asked.
    _state["fault"] = None if faulthandler.is_enabled() else False
    _open_files(forked=False)
    sys.excepthook = _make_excepthook(sys.excepthook)
    # ... and as Python's own: a tracker that prints an uncaught exception itself and chains to the
    # hook it found only when that is not Python's own (wandb) printed it twice otherwise. Such a
    # hook never calls ours; _at_exit records the exception from `sys.last_value`.
    sys.__excepthook__ = sys.excepthook
    for name in _HOOKS:
        if name in sys.modules:
            _hook(name, sys.modules[name])
    sys.meta_path.insert(0, _ImportWatcher())
    sys.exit = _make_exit(sys.exit)
    import builtins

    for name in ("exit", "quit"):
        if callable(getattr(builtins, name, None)):
            setattr(builtins, name, _BuiltinExit(getattr(builtins, name)))
    _watch_raised_exits()
    os.close = _make_close(_os_close)
    os.closerange = _make_closerange(os.closerange)
    import atexit

    atexit.register(_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)


def _main():
    me = sys.modules.get(__name__)
    failure = None
    try:
        _load_shadowed()
    # raised again below, so that `site` reports it exactly as without the probe
    except BaseException as exc:
        failure = exc
    if _RECORDS_DIR:
        try:
            _install()
        except Exception:
            pass
    if me is not None:
        sys.modules["_trainwatch_probe"] = me  # tests and debuggers can still find the probe
    if failure is not None:
        raise failure


# Imported by its package name (the Python API reading an exception of its own process), the file
# is a library: only as `sitecustomize` in a watched child does it set itself up.
if __name__ != "trainwatch.diagnostics.watch.probe.sitecustomize":
    _main()
