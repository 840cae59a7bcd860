"""``python -m animochat.serve <daphne options> animochat.asgi:application``: Daphne on uvloop.

Daphne runs Twisted on an asyncio event loop, which it creates when ``daphne.server``
is first imported; so uvloop's policy is set here, before that import, and then
Daphne's own command line runs unchanged. uvloop's loop runs the same asyncio code
with less work per wake-up and per socket write, the event loop being about a quarter
of a stream's CPU (the figures are in bench/README.md). The launcher, the tests and the
benchmarks all start Daphne through this module, so what is tested is what runs.
"""

import asyncio

try:
    import uvloop
except ImportError:  # no uvloop build for the platform (Windows): Daphne's own loop
    uvloop = None
else:
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

# After the policy: Daphne makes its event loop when its server module is imported.
from daphne.cli import CommandLineInterface

if __name__ == "__main__":
    CommandLineInterface.entrypoint()
