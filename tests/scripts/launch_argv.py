"""Prints its own argv as JSON on stdout."""

import json
import sys

print(json.dumps(sys.argv[1:]))
