"""Imports point one way: the project package at the bottom, the apps above it.

    matchmaking                  queues, the matcher, the stream, status, the admin
      |            \\
    sessions_app   discovery     chat sessions; registration and the chat-server list
      |            /
    animochat                    the project: settings, Redis, HTTP helpers, errors

An app may import the packages below it, never one beside or above it: ``animochat``
imports no app, ``sessions_app`` and ``discovery`` import only ``animochat``, and
``matchmaking`` (which creates sessions and reports discovery) imports all three. Where
the project needs what an app provides (the stream's route, the API document), it finds
the app's module through the app registry (:func:`animochat.apps.app_modules`) instead
of importing it. Naming an app by its
dotted path in Django's wiring (``INSTALLED_APPS``, the root URLconf's ``include()``) is
configuration, not an import.

Every import counts, at module level or inside a function: an import hidden in a
function is a dependency all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.servers import BASE_DIR

# package -> the packages it may import
ALLOWED = {
    "animochat": set(),
    "sessions_app": {"animochat"},
    "discovery": {"animochat"},
    "matchmaking": {"animochat", "sessions_app", "discovery"},
}


def imported_packages(path: Path, base: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the file, at any depth; ``""`` for
    a relative import reaching above its top-level package."""
    # ("__init__" stays: ``from . import x`` in a package's __init__ is the package.)
    module_parts = path.relative_to(base).with_suffix("").parts
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                parent = module_parts[: len(module_parts) - node.level]
                top = parent[0] if parent else ""
            else:
                top = (node.module or "").split(".")[0]
            found.append((node.lineno, top))
    return found


def forbidden_imports(base: Path = BASE_DIR) -> list[str]:
    refused = []
    for package, allowed in ALLOWED.items():
        others = set(ALLOWED) - allowed - {package}
        for path in sorted((base / package).rglob("*.py")):
            for line, top in imported_packages(path, base):
                if top in others or top == "":
                    refused.append(f"{path.relative_to(base)}:{line} imports {top or '..'}")
    return refused


def test_each_package_imports_only_the_layers_below_it():
    assert forbidden_imports() == []


def test_the_scan_sees_imports_inside_functions_and_relative_ones(tmp_path):
    package = tmp_path / "animochat"
    package.mkdir()
    (package / "__init__.py").write_text("from . import hidden\n")
    (package / "hidden.py").write_text(
        "def later():\n    from matchmaking import store\n    return store\n"
    )
    (package / "relative.py").write_text("from ..matchmaking import views\n")
    (tmp_path / "sessions_app").mkdir()
    (tmp_path / "sessions_app" / "views.py").write_text("import matchmaking.validation\n")
    assert forbidden_imports(tmp_path) == [
        "animochat/hidden.py:2 imports matchmaking",
        "animochat/relative.py:1 imports ..",
        "sessions_app/views.py:1 imports matchmaking",
    ]
