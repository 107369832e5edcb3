"""A library's excepthook, installed the two ways trackers do, then an uncaught exception.

`polite` (wandb's way): the hook prints the traceback itself and calls the hook it found only when
that was not Python's own. `chained`: the hook writes a line and hands the exception to the hook it
found, to print. `handled`: a handled exception printed through `sys.__excepthook__`, then a clean
exit: printed, but nothing that ended the run.
"""

import sys
import traceback

style = sys.argv[1]
found = sys.excepthook

if style == "polite":
    previous = found if found != sys.__excepthook__ else None

    def hook(exc_type, value, tb):
        traceback.print_exception(exc_type, value, tb)
        if previous is not None:
            previous(exc_type, value, tb)

    sys.excepthook = hook
elif style == "chained":

    def hook(exc_type, value, tb):
        sys.stderr.write("tracker: finishing the run\n")
        found(exc_type, value, tb)

    sys.excepthook = hook
else:
    try:
        {}["weights"]
    except KeyError:
        sys.__excepthook__(*sys.exc_info())
    print("recovered")
    sys.exit(0)

print("step 1 loss 0.5", flush=True)
raise ValueError("boom from the training loop")
