"""The failure categories of corpus/LABELS.md: the only category ids a report uses."""

# In LABELS.md's order. A module of its own: the command line lists them before anything else loads.
CATEGORIES = (
    "data",
    "oom",
    "numerical",
    "code",
    "library",
    "distributed",
    "hardware",
    "interrupted",
    "hang",
    "early-exit",
    "completed",
    "unknown",
)
