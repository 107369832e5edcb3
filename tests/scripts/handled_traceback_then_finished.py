"""A loop that logs a traceback it handles (an optional package missing, a fallback taken), then
trains all its epochs and exits 0, as many training scripts do for apex or a fused kernel. With
`line`, it logs only the message of an allocation it could not make (no traceback) instead."""

import logging
import sys

logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(levelname)s - %(message)s")
log = logging.getLogger("train")
if sys.argv[1:] == ["line"]:
    import numpy

    try:
        numpy.empty(1 << 50)  # 8 PiB: refused at once
    except MemoryError as error:
        log.warning("cache too big, falling back to reading from disk: %s", error)
else:
    try:
        import trainwatch_no_such_fused_kernel  # noqa: F401  (the optional fast path)
    except ImportError:
        log.exception("fused kernel not available, falling back to the plain one")
loss = 2.0
for epoch in range(1, 4):
    loss *= 0.5
    log.info("Epoch %d/3 - loss %.4f", epoch, loss)
log.info("Training complete")
