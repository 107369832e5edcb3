"""A thread dies of an exception; the main thread carries on and exits 0. With `many`, eight threads
die at once.
"""

import sys
import threading


def work(n):
    return 1 / n


if len(sys.argv) > 1 and sys.argv[1] == "many":
    barrier = threading.Barrier(8)

    def crash(i):
        barrier.wait()
        raise OSError("worker %d failed " % i + "x" * 5000)

    threads = [threading.Thread(target=crash, args=(i,), name="crasher-%d" % i) for i in range(8)]
else:
    threads = [threading.Thread(target=work, args=(0,), name="loader-thread")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("main thread finished")
