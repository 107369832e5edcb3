"""Prints which `sitecustomize` module is loaded, and what the user's sitecustomize left behind."""

import builtins
import sys

module = sys.modules.get("sitecustomize")
print("sitecustomize", getattr(module, "__file__", None))
print("user-site-ran", getattr(builtins, "USER_SITECUSTOMIZE_RAN", False))
print("trainwatch-importable", end=" ")
try:
    import trainwatch.diagnostics  # noqa: F401

    print(True)
except ImportError:
    print(False)
raise LookupError("from the other interpreter")
