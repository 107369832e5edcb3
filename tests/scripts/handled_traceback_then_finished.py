"""A loop that logs a traceback it handles (an optional package missing, a fallback taken), then
trains all its epochs and exits 0, as many training scripts do for apex or a fused kernel."""

import logging

logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(levelname)s - %(message)s")
log = logging.getLogger("train")
try:
    import trainwatch_no_such_fused_kernel  # noqa: F401  (the optional fast path)
except ImportError:
    log.exception("fused kernel not available, falling back to the plain one")
loss = 2.0
for epoch in range(1, 4):
    loss *= 0.5
    log.info("Epoch %d/3 - loss %.4f", epoch, loss)
log.info("Training complete")
