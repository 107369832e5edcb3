"""The diagnosis library: collect evidence from a run or a log, classify it, and build the report.

Never imports typer, rich or trainwatch.cli (tests/test_layering.py checks).
"""

__version__ = "0.1.0"
