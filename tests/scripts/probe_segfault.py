"""Dies of SIGSEGV inside a native call made from the user's code."""

import ctypes
import sys


def read_pointer(address):
    return ctypes.string_at(address)


print("about to crash")
sys.stdout.flush()
read_pointer(0)
