"""``make run`` and ``animochat-matchmaking``: the service's processes, supervised.

``animochat-matchmaking`` (what ``make run`` runs) is everything between a fresh
checkout and a serving matchmaker: it checks the configuration, finds Redis (starting
the embedded one when ``REDIS_URL`` is unset and nothing answers on localhost:6379),
migrates the admin database, collects static files, optionally creates an admin user,
then runs the web processes, ``heartbeat`` and ``sweep_queues`` side by side.

``animochat-matchmaking web`` runs the web processes only, for hosts that run the
heartbeat and the sweeper as processes of their own (``Procfile``) and apply migrations
in a release step.

The web processes are ``WEB_CONCURRENCY`` Daphne processes sharing one listening socket:
it is bound here, once, with a deep backlog, and handed to each Daphne (``--fd``), so
one port is served by every core and the kernel spreads connections over them.

Supervision is what a process manager can trust: Ctrl-C or SIGTERM stops every child
and exits 0; any child exiting on its own stops the others and exits 1, so a restart
policy (systemd, Docker, Render) brings the whole service back.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple, NoReturn

from animochat.config import Config, ConfigError, load_config, project_dir, read_environment
from animochat.embedded_redis import (
    EmbeddedRedis,
    cluster_answers,
    redis_answers,
    sentinel_primary_answers,
)
from animochat.manage import main as manage_main

BASE_DIR = project_dir()
SECRET_KEY_FILE = BASE_DIR / ".secret_key"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379"
# Daphne's own default backlog is 50: a burst of new streams overflows it, and every
# overflowed connection waits a second or more for its SYN to be sent again.
LISTEN_BACKLOG = 4096
SOMAXCONN_PATH = Path("/proc/sys/net/core/somaxconn")
STOP_TIMEOUT = 15.0
EXIT_CHILD_FAILED = 1


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


def fail(message: str) -> NoReturn:
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


def checked_config(env: dict[str, str]) -> Config:
    try:
        return load_config(env, BASE_DIR)
    except ConfigError as error:
        fail(f"configuration error: {error}")


class Prepared(NamedTuple):
    """What the children are started with: their environment and its settings."""

    env: dict[str, str]
    config: Config
    embedded: EmbeddedRedis | None  # started here, stopped with the service


def prepare_environment() -> Prepared:
    """The environment with a SECRET_KEY and a Redis that answers, and its settings,
    parsed once here (each child parses the same environment once for itself)."""
    env = read_environment(BASE_DIR)
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
    config = checked_config(env)

    embedded = None
    if config.redis_cluster_nodes:
        nodes = ",".join(f"{host}:{port}" for host, port in config.redis_cluster_nodes)
        if not cluster_answers(config.redis_cluster_nodes, config.redis_url, timeout=2):
            fail(
                f"no Redis Cluster answers with its slots covered at REDIS_CLUSTER_NODES={nodes}. "
                "Check the nodes and `redis-cli cluster info` (cluster_state:ok)."
            )
        say("redis", nodes=nodes, source="REDIS_CLUSTER_NODES")
    elif config.redis_sentinels:
        sentinels = ",".join(f"{host}:{port}" for host, port in config.redis_sentinels)
        if not sentinel_primary_answers(
            config.redis_sentinels, config.redis_master_name, config.redis_url, timeout=2
        ):
            fail(
                f"no reachable Redis primary named {config.redis_master_name!r} from "
                f"REDIS_SENTINELS={sentinels}. Check REDIS_SENTINELS and REDIS_MASTER_NAME."
            )
        say("redis", sentinels=sentinels, master=config.redis_master_name, source="REDIS_SENTINELS")
    elif "REDIS_URL" in config.given:
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
    config = dataclasses.replace(config, redis_url=env.get("REDIS_URL", config.redis_url))
    return Prepared(env, config, embedded)


def listen_backlog() -> int:
    """4096, or less where the kernel caps backlogs lower (``net.core.somaxconn``)."""
    try:
        return min(LISTEN_BACKLOG, int(SOMAXCONN_PATH.read_text()))
    except (OSError, ValueError):  # not Linux: the kernel caps it silently
        return LISTEN_BACKLOG


def listening_socket(host: str, port: int) -> tuple[socket.socket, int]:
    """The one socket every web process accepts on, bound and listening."""
    backlog = listen_backlog()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {error.strerror or error}")
    sock.listen(backlog)
    return sock, backlog


def manage_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "animochat.manage", *args]


def daphne_command(fd: int) -> list[str]:
    # No --proxy-headers: the application decides the client address itself.
    # No access log from Daphne: ACCESS_LOG turns on the application's own JSON one.
    return [
        sys.executable,
        "-m",
        "animochat.serve",  # Daphne on uvloop
        "--fd",
        str(fd),
        "-v",
        "0",
        "animochat.asgi:application",
    ]


class Supervisor:
    """Starts the children, waits for a signal or a child's exit, then stops them all."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def run_step(self, env: dict[str, str], *args: str) -> None:
        """One management command to completion (migrate…), before serving."""
        if self.stopping:
            raise SystemExit(0)
        result = subprocess.run(manage_command(*args), cwd=BASE_DIR, env=env, check=False)
        if self.stopping:  # Ctrl-C reached the command too
            raise SystemExit(0)
        if result.returncode != 0:
            fail(f"manage.py {args[0]} failed (exit {result.returncode})")

    def start(self, name: str, command: list[str], env: dict[str, str], **options) -> None:
        child = subprocess.Popen(command, cwd=BASE_DIR, env=env, **options)
        self.children.append((name, child))

    def start_web(self, env: dict[str, str], config: Config) -> int:
        """``WEB_CONCURRENCY`` Daphne processes on one socket; returns its backlog."""
        sock, backlog = listening_socket(config.host, config.port)
        try:
            for _ in range(config.web_concurrency):
                self.start("web", daphne_command(sock.fileno()), env, pass_fds=(sock.fileno(),))
        finally:
            # The children hold it now; the launcher accepts nothing itself.
            sock.close()
        return backlog

    def wait(self) -> int:
        """Until a signal (0) or a child's own exit (1)."""
        while not self.stopping:
            for name, child in self.children:
                if child.poll() is not None:
                    say("child exited", name=name, pid=child.pid, code=child.returncode)
                    return EXIT_CHILD_FAILED
            time.sleep(0.2)
        say("stopping")
        return 0

    def stop(self) -> None:
        for _, child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for _, child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def serve(env: dict[str, str], config: Config, supervisor: Supervisor, workers: bool) -> int:
    if supervisor.stopping:
        return 0
    backlog = supervisor.start_web(env, config)
    if workers:
        supervisor.start("heartbeat", manage_command("heartbeat"), env)
        supervisor.start("sweep", manage_command("sweep_queues"), env)
    host = "localhost" if config.host == "0.0.0.0" else config.host
    say(
        "serving",
        url=f"http://{host}:{config.port}",
        backlog=backlog,
        processes=[{"name": name, "pid": child.pid} for name, child in supervisor.children],
    )
    return supervisor.wait()


def run_all() -> int:
    """Everything ``make run`` does; the exit status for the process manager."""
    supervisor = Supervisor()
    env, config, embedded = prepare_environment()
    try:
        supervisor.run_step(env, "migrate", "--no-input", "-v", "0")
        supervisor.run_step(env, "collectstatic", "--no-input", "-v", "0")
        if config.django_superuser_username and config.django_superuser_password:
            supervisor.run_step(env, "ensure_admin")
        return serve(env, config, supervisor, workers=True)
    finally:
        supervisor.stop()
        if embedded is not None:
            embedded.stop()


def run_web() -> int:
    supervisor = Supervisor()
    env = read_environment(BASE_DIR)
    config = checked_config(env)
    try:
        return serve(env, config, supervisor, workers=False)
    finally:
        supervisor.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="animochat-matchmaking",
        description="Run the AnimoChat matchmaking service (configured by the environment "
        "and .env; see .env.example).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "run", help="migrate, then serve with the heartbeat and sweeper (the default)"
    )
    commands.add_parser(
        "web", help="only the web processes: WEB_CONCURRENCY Daphne processes on one socket"
    )
    manage = commands.add_parser(
        "manage", help="a Django management command (migrate, heartbeat, sweep_queues…)"
    )
    manage.add_argument("arguments", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "manage":
        manage_main(["animochat-matchmaking manage", *args.arguments])
        return
    raise SystemExit(run_web() if args.command == "web" else run_all())


if __name__ == "__main__":
    main()
