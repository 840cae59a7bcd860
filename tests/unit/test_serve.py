"""``python -m animochat.serve``: Daphne's server, with the garbage collector tuned once
the application is loaded. Run in a child process, since importing the module sets
uvloop's event loop policy for the whole process."""

from __future__ import annotations

import subprocess
import sys

from tests.support.servers import BASE_DIR

CHILD = """
import gc
from daphne import server
server.Server.run = lambda self: print(gc.get_threshold()[0], gc.get_freeze_count())
from animochat import serve
print(gc.get_threshold()[0], gc.get_freeze_count())
serve.Server.__new__(serve.Server).run()
print(serve.GC_THRESHOLD)
"""


def test_the_server_freezes_start_up_objects_and_collects_less_often():
    result = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=BASE_DIR, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    before, during, threshold = (line.split() for line in result.stdout.splitlines()[:3])
    assert before[1] == "0"  # nothing frozen until the server runs
    collect_every, frozen = map(int, during)
    assert collect_every == int(threshold[0]) > int(before[0])  # above Python's own
    assert frozen > 10_000  # every object alive then: here Daphne's and Twisted's modules
