"""Exits with status 3: through sys.exit by default, through a bare `raise SystemExit(3)` with
`raise`, through sys.exit in the `except` block of a caught MemoryError with `handled` (through
the builtin `exit` there with `builtin`, through `raise SystemExit(3)` there with `raised`); with
`printed`, the program prints the SystemExit of sys.exit itself (`traceback.print_exc()`), as
torch.multiprocessing's spawn and torchrun's `@record` print a child's error, then exits 3.
"""

import sys


def check_config():
    print("config invalid")
    if len(sys.argv) > 1 and sys.argv[1] == "raise":
        raise SystemExit(3)
    if len(sys.argv) > 1 and sys.argv[1] == "handled":
        try:
            raise MemoryError("Unable to allocate 4.00 PiB for an array")
        except MemoryError:
            sys.exit(3)
    if len(sys.argv) > 1 and sys.argv[1] == "builtin":
        try:
            raise MemoryError("Unable to allocate 4.00 PiB for an array")
        except MemoryError:
            exit(3)
    if len(sys.argv) > 1 and sys.argv[1] == "raised":
        try:
            raise MemoryError("Unable to allocate 4.00 PiB for an array")
        except MemoryError:
            raise SystemExit(3)
    if len(sys.argv) > 1 and sys.argv[1] == "printed":
        import traceback

        try:
            sys.exit("config invalid")
        except SystemExit:
            traceback.print_exc()
    sys.exit(3)


check_config()
