"""``python -m animochat.serve <daphne options> animochat.asgi:application``: Daphne on
uvloop, with the garbage collector tuned for a server.

Daphne runs Twisted on an asyncio event loop, which it creates when ``daphne.server``
is first imported; so uvloop's policy is set here, before that import, and then
Daphne's own command line runs unchanged. uvloop's loop runs the same asyncio code
with less work per wake-up and per socket write, the event loop being about a quarter
of a stream's CPU (the figures are in bench/README.md). The launcher, the tests and the
benchmarks all start Daphne through this module, so what is tested is what runs.

The cyclic garbage collector took about a tenth of a stream's CPU: every 700 objects
made and not yet freed started a collection, and the oldest generation's collections
walked everything Django, Twisted and the project loaded at start-up. Once the
application is loaded, :class:`Server` freezes those objects (``gc.freeze()``: kept out
of every later collection, as they live as long as the process) and starts a collection
every :data:`GC_THRESHOLD` objects instead of 700. A higher threshold (10,000) saved
only about 2 % more of the CPU but let the garbage of the JSON API's Django requests
wait longer, and a soak's memory then crept up (bench/README.md).
"""

import asyncio
import gc

try:
    import uvloop
except ImportError:  # no uvloop build for the platform (Windows): Daphne's own loop
    uvloop = None
else:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

# After the policy: Daphne makes its event loop when its server module is imported.
from daphne import server
from daphne.cli import CommandLineInterface

GC_THRESHOLD = 2_000  # objects made and not freed between collections (Python's: 700)


class Server(server.Server):
    """Daphne's server, which tunes the garbage collector once the application is
    loaded (see the module's docstring)."""

    def run(self) -> None:
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
        super().run()


class Serve(CommandLineInterface):
    server_class = Server


if __name__ == "__main__":
    Serve.entrypoint()
