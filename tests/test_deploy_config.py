""".env.example lists every setting with its true default; render.yaml is a working
Blueprint. (The Procfile's commands are run from an installed wheel in test_packaging.)"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping

import pytest
import yaml

from animochat import config
from tests.support.servers import BASE_DIR

NAME = re.compile(r"[A-Z][A-Z0-9_]{2,}")
EXAMPLE_LINE = re.compile(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$")
# Read by the launcher and ensure_admin rather than by the configuration.
ADMIN_USER = {"DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD"}


def example() -> dict[str, str]:
    """``.env.example``'s settings, commented out or not, with their values."""
    lines = (BASE_DIR / ".env.example").read_text().splitlines()
    found = [EXAMPLE_LINE.match(line) for line in lines]
    names = [match[1] for match in found if match]
    assert len(names) == len(set(names)), "a setting is listed twice"
    return {match[1]: match[2] for match in found if match}


def names_in_config_source() -> set[str]:
    """Every name config.py reads: ``env.get("X", …)``, ``env["X"]``, ``"X" in env`` and
    any call given ``env`` then a literal name (``parse_int(env, "X", …)``)."""
    tree = ast.parse((BASE_DIR / "animochat" / "config.py").read_text())

    def is_env(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id == "env"

    def literal(node: ast.AST) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value if NAME.fullmatch(node.value) else None
        return None

    names: set[str] = set()
    for node in ast.walk(tree):
        candidates: list[ast.AST] = []
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and is_env(node.func.value):
                candidates = node.args[:1]
            candidates += [node.args[i + 1] for i, arg in enumerate(node.args[:-1]) if is_env(arg)]
        elif isinstance(node, ast.Subscript) and is_env(node.value):
            candidates = [node.slice]
        elif isinstance(node, ast.Compare) and any(is_env(c) for c in node.comparators):
            candidates = [node.left]
        names.update(name for name in map(literal, candidates) if name)
    return names


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every name looked up in it."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def names_looked_up(tmp_path) -> set[str]:
    env = RecordingEnv({"SECRET_KEY": "k"})
    config.load_config(env, base_dir=tmp_path)
    return env.asked


def test_every_setting_the_configuration_reads_is_in_env_example(tmp_path):
    read = names_in_config_source() | names_looked_up(tmp_path)
    assert {"PORT", "REDIS_URL", "WEB_CONCURRENCY", "ACCESS_LOG"} <= read  # the scan works
    missing = read - set(example())
    assert not missing, f"add these to .env.example (and the README): {sorted(missing)}"


def test_env_example_and_readme_list_the_same_settings():
    readme = (BASE_DIR / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split(" | ")[0])
    }
    assert documented == set(example())
    assert set(example()) - ADMIN_USER <= names_in_config_source() | ADMIN_USER


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, v in example().items() if v])
def test_each_default_in_env_example_is_the_real_default(tmp_path, name, value):
    """Setting the listed value changes nothing (an empty value means computed)."""
    base = {"SECRET_KEY": "k"}
    assert config.load_config({**base, name: value}, base_dir=tmp_path) == config.load_config(
        base, base_dir=tmp_path
    )


def blueprint() -> dict:
    return yaml.safe_load((BASE_DIR / "render.yaml").read_text())


def test_render_blueprint():
    services = {service["name"]: service for service in blueprint()["services"]}
    (web,) = [s for s in services.values() if s["type"] == "web"]
    (redis,) = [s for s in services.values() if s["type"] == "keyvalue"]
    assert web["healthCheckPath"] == "/healthz"
    assert web["startCommand"] == "python -m animochat.launcher"  # test_launcher runs it
    assert "pip install --require-hashes -r requirements.lock" in web["buildCommand"]
    assert "\npsycopg-binary==" in (BASE_DIR / "requirements.lock").read_text()  # postgres
    assert redis["maxmemoryPolicy"] == "noeviction" and redis["ipAllowList"] == []

    env = {var["key"]: var for var in web["envVars"]}
    assert env["REDIS_URL"]["fromService"] == {
        "type": "keyvalue",
        "name": redis["name"],
        "property": "connectionString",
    }
    # Secrets are never in the file: generated by Render, or asked for when applied.
    assert env["SECRET_KEY"] == {"key": "SECRET_KEY", "generateValue": True}
    for secret in ("DJANGO_SUPERUSER_PASSWORD", "AUTH_JWT_SECRET", "DATABASE_URL"):
        assert env[secret] == {"key": secret, "sync": False}
    # Every variable is one the service reads (Render's own PYTHON_VERSION aside), and
    # every fixed value is a valid one.
    settings = set(example())
    assert set(env) - {"PYTHON_VERSION"} <= settings
    fixed = {key: var["value"] for key, var in env.items() if "value" in var}
    config.load_config({"SECRET_KEY": "k", **fixed}, base_dir=BASE_DIR)
