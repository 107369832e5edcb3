"""Starts a grandchild that sleeps, writes both pids to a file, then sleeps itself (for the
no-orphan test).
"""

import subprocess
import sys
import time

grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
with open(sys.argv[1], "w") as f:
    f.write(f"{__import__('os').getpid()} {grandchild.pid}\n")
print("ready", flush=True)
time.sleep(120)
