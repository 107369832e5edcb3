"""Raises a chained exception: KeyError, then (during handling) ValueError, then RuntimeError from
it. An object in its globals writes its last line as the interpreter clears them, as tqdm's bar
draws its final frame: the probe must not keep it alive past that (it held the traceback once).
"""

import sys


class WritesAtShutdown:
    def __del__(self):
        sys.stderr.write("finalized at shutdown\n")


keeper = WritesAtShutdown()

print("starting")
sys.stdout.flush()
print("to stderr before the crash", file=sys.stderr)


def load(table):
    return table["weights"]


def parse(suppress):
    try:
        load({})
    except KeyError:
        if suppress:
            raise ValueError("bad config") from None
        raise ValueError("bad config")


def main(suppress):
    try:
        parse(suppress)
    except ValueError as exc:
        raise RuntimeError("cannot start training") from exc


main(suppress=len(sys.argv) > 1 and sys.argv[1] == "suppress")
