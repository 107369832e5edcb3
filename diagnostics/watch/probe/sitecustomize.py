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

import os
import sys

# The parent's settings. Without TRAINWATCH_PROBE_DIR (a copy left on a path by mistake) the probe
# only chains.
_RECORDS_DIR = os.environ.get("TRAINWATCH_PROBE_DIR")
_HERE = os.path.dirname(os.path.abspath(__file__))
# A file by this name marks a directory as a trainwatch probe's, so a nested run's probe skips the
# outer one's copy.
_MARKER = "trainwatch-probe"
_VERSION = 1
_MAX_FRAMES = (
    100  # per exception: the outermost 20 and the innermost 80 (a RecursionError has ~1000)
)
_MAX_MESSAGE = (
    100000  # characters; a DataLoader wrapper carries a whole worker traceback in its message
)
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
    "exit": None,
    "recorded": None,
    "lib": (),
    "fd_id": None,
    "tfd_id": None,
    "fd_path": "",
    "tfd_path": "",
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
        rest = [
            p for p in rest if os.path.abspath(p or ".") != where
        ]  # an outer trainwatch's probe
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
            except BaseException:
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
            except BaseException:
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
        _state.update(fd=-1, tfd=-1, exit=None, recorded=None)
        _open_files(forked=True)
    except BaseException:
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
    except BaseException:
        text = "<str() failed>"
    return text[:_MAX_MESSAGE]


def _chain(value):
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
    out = []
    for i, exc in enumerate(chain):
        frames, omitted = _frames(tb=getattr(exc, "__traceback__", None))
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
    if value is None or value is _state["recorded"]:
        return
    if thread is None:
        _state["recorded"] = value
    _write(exception_record(value, thread))


def _make_excepthook(previous):
    def excepthook(exc_type, value, tb):
        """Record an uncaught exception, then let the previous hook print it as usual."""
        try:
            _record_exception(value, None)
        except BaseException:
            pass
        return previous(exc_type, value, tb)

    return excepthook


def _make_thread_excepthook(previous):
    def thread_excepthook(args):
        """Record an exception that ended a thread (SystemExit ends a thread silently), then print
        as usual."""
        try:
            if args.exc_type is not SystemExit:
                name = getattr(args.thread, "name", None) if args.thread is not None else None
                _record_exception(args.exc_value, name or "<unknown thread>")
        except BaseException:
            pass
        return previous(args)

    return thread_excepthook


def _install_thread_hook(threading):
    try:
        threading.excepthook = _make_thread_excepthook(threading.excepthook)
    except BaseException:
        pass


class _ThreadingWatcher:
    """Hooks `threading.excepthook` when the program imports threading: importing it ourselves costs
    ~1 ms."""

    def find_spec(self, name, path=None, target=None):
        if name != "threading":
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
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
            try:
                del loader.exec_module  # the loader goes back to what it was
            except AttributeError:
                pass
            original(module)
            _install_thread_hook(module)

        loader.exec_module = exec_module
        return spec


def _make_exit(original):
    def exit(*args):
        """sys.exit, noting the code and the caller's stack; written at interpreter exit (it may yet
        be caught)."""
        try:
            code = args[0] if args else None
            if code is not None and code != 0:
                frames, _ = _frames(frame=sys._getframe(1))
                _state["exit"] = {
                    "code": code if isinstance(code, int) else _message(code),
                    "frames": frames,
                }
        except BaseException:
            pass
        return original(*args)

    exit.__doc__ = original.__doc__
    return exit


def _at_exit():
    """At normal interpreter shutdown: an uncaught exception a replaced excepthook hid, and how
    Python exited."""
    try:
        last = getattr(sys, "last_value", None)
        if last is not None:
            _record_exception(last, None)
        import time

        _write(
            {"kind": "exit", "pid": os.getpid(), "time": time.time(), "sys_exit": _state["exit"]}
        )
    except BaseException:
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
    threading = sys.modules.get("threading")
    if threading is not None:
        _install_thread_hook(threading)
    else:
        sys.meta_path.insert(0, _ThreadingWatcher())
    sys.exit = _make_exit(sys.exit)
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
    except (
        BaseException
    ) as exc:  # raised again below, so that `site` reports it exactly as without the probe
        failure = exc
    if _RECORDS_DIR:
        try:
            _install()
        except BaseException:
            pass
    if me is not None:
        sys.modules["_trainwatch_probe"] = me  # tests and debuggers can still find the probe
    if failure is not None:
        raise failure


# Imported by its package name (the Python API reading an exception of its own process), the file
# is a library: only as `sitecustomize` in a watched child does it set itself up.
if __name__ != "trainwatch.diagnostics.watch.probe.sitecustomize":
    _main()
