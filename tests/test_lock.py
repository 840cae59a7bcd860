"""The lock files `make run` and `make test` install from agree with pyproject.toml.

A dependency added or a floor raised in pyproject.toml without `make lock` would leave
a fresh machine on versions that were never asked for; this catches it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.servers import BASE_DIR

PYPROJECT = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]


def requirements(*extras: str) -> list[Requirement]:
    """The project's requirements with ``extras``, its references to itself expanded."""
    found: list[Requirement] = []
    pending = [*PYPROJECT["dependencies"]]
    for extra in extras:
        pending += PYPROJECT["optional-dependencies"][extra]
    while pending:
        requirement = Requirement(pending.pop(0))
        if canonicalize_name(requirement.name) == canonicalize_name(PYPROJECT["name"]):
            for extra in requirement.extras:
                pending += PYPROJECT["optional-dependencies"][extra]
        else:
            found.append(requirement)
    return found


LOCKS = {
    "requirements.lock": requirements("postgres"),
    "requirements-test.lock": requirements("postgres", "test"),
}
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\?$")


def locked(path: Path) -> dict[str, str]:
    """``{name: version}`` of the entries that apply here, each checked to carry hashes."""
    pins: dict[str, str] = {}
    entry: str | None = None
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith("    --hash=sha256:"):
            assert re.fullmatch(r"    --hash=sha256:[0-9a-f]{64}( \\)?", line), line
            entry = None
            continue
        assert entry is None, f"{entry} has no hash"
        match = PIN.match(line)
        if match:
            name, version, marker = match.groups()
            entry = name
            if marker is None or Requirement(f"x; {marker}").marker.evaluate():
                pins[canonicalize_name(name)] = version
    return pins


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_is_locked_within_its_range(lock):
    pins = locked(BASE_DIR / lock)
    environment = default_environment()
    for requirement in LOCKS[lock]:
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is missing from {lock}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside {requirement.specifier}: run `make lock`"
        )


def test_the_lock_holds_what_this_run_tests():
    """The test run itself uses the locked versions (the lock is not just paperwork)."""
    from importlib.metadata import version

    pins = locked(BASE_DIR / "requirements-test.lock")
    for name in ("django", "channels-redis", "twisted", "redis", "requests"):
        assert version(name) == pins[name], name
