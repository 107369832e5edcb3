"""Reading text: a log (saved or streaming) into facts: tracebacks, system lines, progress and
losses.
"""
