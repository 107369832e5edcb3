"""`python -m trainwatch.cli`: the same entry point as the `trainwatch` command."""

from .app import main

main()
