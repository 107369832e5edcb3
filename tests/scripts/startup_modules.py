"""Runs `trainwatch ARGS...` in this process and writes, to the file named by $MODULES_OUT, every
module imported at the moment the child is started: what `trainwatch run` costs before the
program can begin."""

import os
import subprocess
import sys

from trainwatch.cli.app import main

_original = subprocess.Popen.__init__


def _record(self, *args, **kwargs):
    path = os.environ.pop("MODULES_OUT", None)  # the first Popen only: the child
    if path:
        with open(path, "w") as handle:
            handle.write("\n".join(sorted(sys.modules)))
    _original(self, *args, **kwargs)


subprocess.Popen.__init__ = _record
main(sys.argv[1:])
