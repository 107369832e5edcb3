"""Judging: evidence and knowledge into a verdict (the root cause, its cascade, the quiet stops, the
ranks).
"""
