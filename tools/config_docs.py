#!/usr/bin/env python3
"""The parameter tables of config/README.md, generated from the configuration schema.

workflow/schemas/config.schema.yaml is the one source of every default and its meaning
(``default`` and ``description`` of each key). Each table sits between the markers
``<!-- config-docs: SECTION -->`` and ``<!-- /config-docs -->`` in config/README.md
(SECTION: a top-level key of the schema, or ``inputs`` for the top-level plain keys).

Usage (from the repository)::

    python tools/config_docs.py           # rewrite the tables in config/README.md
    python tools/config_docs.py --check   # exit 1 if config/README.md is out of date

``tests/test_config_docs.py`` runs the check.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
README = REPO / "config" / "README.md"

_BLOCK = re.compile(r"(<!-- config-docs: (\w+) -->\n)(.*?)(<!-- /config-docs -->)", re.S)
_PLAIN = re.compile(r"^[A-Za-z0-9_.+\-/ ]*[A-Za-z0-9_.+\-/]$")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if _PLAIN.match(value) else yaml.safe_dump(value).strip().split("\n")[0]
    return repr(value)


def _flow(value: Any) -> str:
    """A YAML flow rendering of a default (``[a, b]``, ``{k: v}``)."""
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    return _scalar(value)


def render_default(prop: dict[str, Any], required: bool) -> str:
    """The default column: the value in YAML flow style (lists of named entries by
    their names), ``(required)`` or empty."""
    if "default" not in prop:
        return "(required)" if required else ""
    value = prop["default"]
    if (isinstance(value, list) and len(value) > 1 and value
            and all(isinstance(v, dict) and "name" in v for v in value)):
        return ", ".join(f"`{_scalar(v['name'])}`" for v in value)
    return f"`{_flow(value)}`"


def leaf_rows(props: dict[str, Any], required: list[str], prefix: str = ""
              ) -> list[tuple[str, str, str]]:
    """(dotted key, default, description) of every documented key below ``props``:
    objects with ``properties`` are expanded, the rest are rows."""
    rows = []
    for name, prop in props.items():
        key = f"{prefix}{name}"
        if prop.get("type") == "object" and "properties" in prop:
            rows += leaf_rows(prop["properties"], prop.get("required", []), f"{key}.")
            continue
        desc = " ".join(str(prop.get("description", "")).split())
        rows.append((key, render_default(prop, name in required), desc))
    return rows


def section_rows(schema: dict[str, Any], section: str) -> list[tuple[str, str, str]]:
    """Rows of one README section: ``inputs`` (top-level keys that are not objects) or a
    top-level object of the schema."""
    props = schema["properties"]
    if section == "inputs":
        plain = {k: v for k, v in props.items() if v.get("type") != "object"}
        return leaf_rows(plain, schema.get("required", []))
    prop = props[section]
    return leaf_rows(prop["properties"], prop.get("required", []))


def table(rows: list[tuple[str, str, str]]) -> str:
    out = ["| key | default | meaning |", "|---|---|---|"]
    out += [f"| `{k}` | {d} | {m} |" for k, d, m in rows]
    return "\n".join(out) + "\n"


def render_readme(text: str, schema: dict[str, Any]) -> str:
    """``text`` with every marked table regenerated from ``schema``."""
    return _BLOCK.sub(lambda m: m.group(1) + table(section_rows(schema, m.group(2)))
                      + m.group(4), text)


def documented_sections(text: str) -> list[str]:
    """The sections that have a marked table in ``text``."""
    return [m.group(2) for m in _BLOCK.finditer(text)]


def load_schema(path: Path = SCHEMA) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="only check that config/README.md is up to date")
    args = ap.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = render_readme(text, load_schema())
    if args.check:
        if new != text:
            print(f"{README.relative_to(REPO)} is out of date: run python tools/config_docs.py",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        README.write_text(new, encoding="utf-8")
        print(f"updated {README.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
