"""Watching a live run: the child and its output, the memory and GPU monitor, the stall watcher, the
probe.
"""
