"""The README's configuration table and ``.env.example``, written from the declarations.

``python -m animochat.config_docs --write`` (``make settings-docs``) rewrites both after a
setting is added or changed in :mod:`animochat.config`; ``--markdown`` and
``--env-example`` print one of them. tests/test_deploy_config.py fails while either file
says something the declarations do not.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

from animochat.config import SETTINGS, Computed, Setting, project_dir

README_TABLE_HEADER = "| Variable | Default | Meaning |"
ENV_EXAMPLE_INTRO = """\
# Every setting of the matchmaking service, with its default. Copy this file to .env
# (the environment wins over it) and uncomment what you change. An empty value means
# "unset": the default is then used, or computed as its comment says (where a comment
# says "empty: none", an empty value is an empty list). The README's Configuration
# table says the same. Written by `python -m animochat.config_docs --write` from
# animochat/config.py: change a setting there, not here.
"""
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def value_text(value: object) -> str:
    """A value as it is written in the environment."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(value_text(item) for item in value)
    return str(value)


def shown_default(setting: Setting) -> str:
    """The README's Default column (Markdown)."""
    if isinstance(setting.default, Computed):
        return setting.default.shown
    if setting.shown is not None:
        return setting.shown
    text = value_text(setting.default)
    return f"`{text}`" if text else "—"


def markdown_table() -> str:
    rows = [README_TABLE_HEADER, "| --- | --- | --- |"]
    rows += [f"| `{s.name}` | {shown_default(s)} | {s.help} |" for s in SETTINGS]
    return "\n".join(rows) + "\n"


def plain(markdown: str) -> str:
    """Markdown as a comment reads it: links as their text, code without backticks, the
    table's "—" (nothing) as a word."""
    text = _LINK.sub(r"\1", markdown).replace("`", "")
    return "none" + text.removeprefix("—") if text.startswith("—") else text


def env_example() -> str:
    parts = [ENV_EXAMPLE_INTRO]
    section = None
    for s in SETTINGS:
        if s.section != section:
            section = s.section
            parts.append(f"\n# --- {section} ---\n")
        comment = plain(s.help) + "."
        if isinstance(s.default, Computed) or s.shown is not None:
            comment += f" Default: {plain(shown_default(s))}."
        # A computed value is not written: uncommented, it would hold for good.
        value = "" if isinstance(s.default, Computed) else value_text(s.default)
        lines = textwrap.wrap(comment, width=86, break_on_hyphens=False)
        parts.append("".join(f"# {line}\n" for line in lines) + f"# {s.name}={value}\n")
    return "".join(parts)


def readme_with_table(readme: str) -> str:
    """``readme`` with its configuration table replaced by the declarations' one."""
    lines = readme.splitlines(keepends=True)
    start = lines.index(README_TABLE_HEADER + "\n")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join(lines[:start]) + markdown_table() + "".join(lines[end:])


def main(argv: list[str] | None = None, base_dir: Path | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m animochat.config_docs",
        description="Write the settings' documentation from animochat/config.py.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--markdown", action="store_true", help="print the README's table")
    what.add_argument("--env-example", action="store_true", help="print .env.example")
    what.add_argument("--write", action="store_true", help="rewrite README.md and .env.example")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
    elif args.env_example:
        sys.stdout.write(env_example())
    else:
        base_dir = base_dir or project_dir()
        readme = base_dir / "README.md"
        readme.write_text(readme_with_table(readme.read_text()))
        (base_dir / ".env.example").write_text(env_example())


if __name__ == "__main__":
    main()
