"""Exits with status 3: through sys.exit by default, through a bare `raise SystemExit(3)` with
`raise`.
"""

import sys


def check_config():
    print("config invalid")
    if len(sys.argv) > 1 and sys.argv[1] == "raise":
        raise SystemExit(3)
    sys.exit(3)


check_config()
