"""``zsched config``: every setting, its variable, its default and the value this shell gives it."""

from __future__ import annotations

import argparse

import msgspec

from ..settings import FIELDS, Settings, env_name, redact_url


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``config``."""
    cmd = subparsers.add_parser(
        "config",
        parents=[common],
        help="list every setting: variable, default, and the value from this environment and flags",
        description="Every setting is a ZSCHED_* variable. Durations take units (500ms, 30s, 5m); a bare "
        "number is in the unit the name ends with.",
    )
    cmd.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Print the table (or JSON) of every setting."""
    defaults = Settings()
    rows = [
        (
            section,
            env_name(name),
            _text(name, getattr(getattr(defaults, section), name)),
            _text(name, getattr(getattr(settings, section), name)),
        )
        for name, (section, _) in FIELDS.items()
    ]
    if args.json:
        print(msgspec.json.encode({variable: {"value": v, "default": d} for _, variable, d, v in rows}).decode())
        return 0
    width = max(len(variable) for _, variable, _, _ in rows)
    for section, variable, default, value in rows:
        shown = "" if value == default else f"  (default {default})"
        print(f"{section:<9} {variable:<{width}}  {value}{shown}")
    return 0


def _text(name: str, value: object) -> str:
    """A value as a variable would spell it; secrets and URL passwords are never shown."""
    if value is None or value == ():
        return "-"
    if "secret" in name or "password" in name or name.endswith("_token"):
        return "(set)"
    if name.endswith("_url") and isinstance(value, str):
        return redact_url(value)
    if name.endswith("_ms"):
        values = value if isinstance(value, tuple) else (value,)
        return ",".join(_duration(int(v)) for v in values)
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
