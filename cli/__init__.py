"""The terminal face of trainwatch: commands, options, and how reports look. The only place typer
and rich live.
"""

import resource
import sys

# Under a file-size limit (`ulimit -f`, RLIMIT_FSIZE) Python writes a module's bytecode cut short
# where it is larger than the limit and keeps the file: every later start of trainwatch then
# fails on it (`EOFError: marshal data too short`, seen when a suite's size-limit test met a
# module changed since its last compile). trainwatch's own process writes none there.
if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
    sys.dont_write_bytecode = True
