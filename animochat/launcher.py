"""``make run``: everything between a fresh checkout and a serving matchmaker.

Checks the configuration, finds Redis (starting the embedded one when ``REDIS_URL``
is unset and nothing answers on localhost:6379), migrates the admin database,
optionally creates an admin user, then runs Daphne, ``manage.py heartbeat`` and
``manage.py sweep_queues`` side by side until Ctrl-C or SIGTERM, which stops
everything it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from animochat.config import ConfigError, load_config, read_dotenv
from animochat.embedded_redis import EmbeddedRedis, redis_answers, sentinel_primary_answers

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY_FILE = BASE_DIR / ".secret_key"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379"


def say(event: str, level: str = "INFO", **fields: object) -> None:
    """The launcher's own log line, shaped like the service's JSON logs."""
    entry = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": "animochat.launcher",
        "event": event,
        **fields,
    }
    print(json.dumps(entry), file=sys.stderr, flush=True)


def fail(message: str) -> None:
    print(f"make run: {message}", file=sys.stderr)
    raise SystemExit(2)


def local_secret_key() -> str:
    """A SECRET_KEY generated once and kept in .secret_key (git-ignored), mode 0600.

    The key is written to a temporary file created with mode 0600 (never readable by
    others, whatever the umask, not even before a chmod), then linked into place:
    ``link`` never replaces a file, so when two runs start together both end up with
    the key of the one that linked first.
    """
    if not SECRET_KEY_FILE.exists():
        draft = SECRET_KEY_FILE.with_name(f"{SECRET_KEY_FILE.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(50))
            with contextlib.suppress(FileExistsError):
                os.link(draft, SECRET_KEY_FILE)
        finally:
            draft.unlink()
    elif SECRET_KEY_FILE.stat().st_mode & 0o077:
        SECRET_KEY_FILE.chmod(0o600)  # made by an older version, or by hand
    return SECRET_KEY_FILE.read_text().strip()


def prepare_environment() -> tuple[dict[str, str], EmbeddedRedis | None]:
    env = {**read_dotenv(BASE_DIR / ".env"), **os.environ}
    if not env.get("SECRET_KEY"):
        env["SECRET_KEY"] = local_secret_key()
        if env.get("RENDER_EXTERNAL_URL"):
            say(
                "secret_key_per_instance",
                "WARNING",
                message="SECRET_KEY is not set, so this instance signs admin sessions and "
                "CSRF tokens with its own generated key (.secret_key): behind one public URL "
                "each instance would reject the others' log-ins. Set the same SECRET_KEY "
                "on every instance.",
            )
    try:
        config = load_config(env, BASE_DIR)
    except ConfigError as error:
        fail(f"configuration error: {error}")

    embedded = None
    if config.redis_sentinels:
        sentinels = ",".join(f"{host}:{port}" for host, port in config.redis_sentinels)
        if not sentinel_primary_answers(
            config.redis_sentinels, config.redis_master_name, config.redis_url, timeout=2
        ):
            fail(
                f"no reachable Redis primary named {config.redis_master_name!r} from "
                f"REDIS_SENTINELS={sentinels}. Check REDIS_SENTINELS and REDIS_MASTER_NAME."
            )
        say("redis", sentinels=sentinels, master=config.redis_master_name, source="REDIS_SENTINELS")
    elif config.redis_url_explicit:
        if not redis_answers(config.redis_url, timeout=2):
            fail(
                f"REDIS_URL={config.redis_url} is not reachable. Start that Redis, fix "
                "REDIS_URL, or unset it to use an embedded Redis."
            )
        say("redis", url=config.redis_url, source="REDIS_URL")
    elif redis_answers(LOCAL_REDIS_URL):
        env["REDIS_URL"] = LOCAL_REDIS_URL
        say("redis", url=LOCAL_REDIS_URL, source="localhost")
    else:
        embedded = EmbeddedRedis().start()
        env["REDIS_URL"] = embedded.url
        say(
            "redis",
            url=embedded.url,
            source="embedded",
            note="nothing answered on localhost:6379; data lives only as long as this run",
        )
    return env, embedded


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def main() -> None:
    env, embedded = prepare_environment()
    children: list[subprocess.Popen] = []
    try:
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "collectstatic", "--no-input", "-v", "0")
        if env.get("DJANGO_SUPERUSER_USERNAME") and env.get("DJANGO_SUPERUSER_PASSWORD"):
            manage(env, "ensure_admin")
        port = env.get("PORT", "3000") or "3000"
        host = env.get("HOST", "0.0.0.0") or "0.0.0.0"
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    host,
                    "-p",
                    port,
                    # No access log: the service logs its own events, and Daphne formatting a line
                    # per request for nobody cost 3 % of its CPU.
                    "-v",
                    "0",
                    "animochat.asgi:application",
                ],
                cwd=BASE_DIR,
                env=env,
            )
        )
        for command in ("heartbeat", "sweep_queues"):
            children.append(
                subprocess.Popen([sys.executable, "manage.py", command], cwd=BASE_DIR, env=env)
            )
        say(
            "serving",
            url=f"http://{'localhost' if host == '0.0.0.0' else host}:{port}",
            processes=[c.pid for c in children],
        )
        stop_on_signal(children, embedded)
    finally:
        stop(children, embedded)


def stop_on_signal(children: list[subprocess.Popen], embedded: EmbeddedRedis | None) -> None:
    stopping = False

    def handle(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    while not stopping:
        for child in children:
            if child.poll() is not None:
                say("child exited", pid=child.pid, code=child.returncode)
                return
        time.sleep(0.2)
    say("stopping")


def stop(children: list[subprocess.Popen], embedded: EmbeddedRedis | None) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    if embedded is not None:
        embedded.stop()


if __name__ == "__main__":
    main()
