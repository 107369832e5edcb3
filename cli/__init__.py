"""The terminal face of trainwatch: commands, options, and how reports look. The only place typer
and rich live.
"""
