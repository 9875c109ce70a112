"""``zsched template save|list|show|preview|delete|schedule``: named, versioned templates from a shell."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from ..settings import Settings, parse_duration_ms
from .output import show

EXAMPLE_FILE = """\
a template file is JSON: a variant per locale, and the locale used when a recipient's has none:
  {"fallback_locale": "en",
   "variants": {"en": {"title": "Welcome, {{ name }}", "message": "Your plan: {{ plan }}",
                       "html": "<p>Welcome, <b>{{ name }}</b></p>"},
                "fr": {"title": "Bienvenue, {{ name }}", "message": "Votre offre : {{ plan }}"}}}
sources are Jinja2, rendered in its sandbox with the context given when scheduling, plus recipient,
locale and contact (email, phone, locale); the HTML body is autoescaped.

examples:
  zsched template save welcome welcome.json
  zsched template preview welcome --context '{"name": "Ana", "plan": "pro"}' --locale fr
  zsched template schedule welcome --to alice --to bob --context '{"name": "you", "plan": "pro"}' --in 1h
"""


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``template ...`` under the ``zsched`` command."""
    template = subparsers.add_parser(
        "template",
        help="named, versioned templates with a variant per locale",
        epilog=EXAMPLE_FILE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = template.add_subparsers(dest="template_command", required=True, metavar="ACTION")
    cmd = verbs.add_parser(
        "save",
        parents=[common],
        help="save a template's next version from a JSON file (earlier versions are kept)",
        epilog=EXAMPLE_FILE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("name", help="letters, digits, '-', '_', '.'")
    cmd.add_argument("file", help="the JSON file ('-' reads stdin)")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = verbs.add_parser("list", parents=[common], help="every template's latest version")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = verbs.add_parser("show", parents=[common], help="one version of a template (the latest by default)")
    cmd.add_argument("name")
    cmd.add_argument("--version", type=int, help="which version (default: the latest)")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = verbs.add_parser("preview", parents=[common], help="render a template with a context for a locale")
    cmd.add_argument("name")
    cmd.add_argument("--context", help="a JSON object of the template's variables")
    cmd.add_argument("--locale", help="render as a recipient of this locale would get it (default: the fallback)")
    cmd.add_argument("--version", type=int, help="which version (default: the latest)")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = verbs.add_parser(
        "delete", parents=[common], help="delete every version (refused while pending notifications use it)"
    )
    cmd.add_argument("name")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = verbs.add_parser(
        "schedule",
        parents=[common],
        help="schedule with a template, rendered when sent in each recipient's locale",
        description="One notification per recipient, due --at a time or --in a delay; the context must render "
        "every variant now, or nothing is scheduled.",
    )
    cmd.add_argument("name")
    cmd.add_argument("--to", action="append", required=True, metavar="RECIPIENT", help="repeat for several")
    cmd.add_argument("--context", help="a JSON object of the template's variables")
    cmd.add_argument("--version", type=int, help="which version (default: the latest)")
    when = cmd.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", help="ISO 8601 time with offset, e.g. 2025-12-28T10:00:00Z")
    when.add_argument("--in", dest="delay", help="delay from now, e.g. 2s, 5m, 1h30m")
    cmd.add_argument("--channel", action="append", default=[], help="a channel to send through; repeat for several")
    cmd.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``template`` action; returns the exit status."""
    with settings.scheduler() as zs:
        action = args.template_command
        if action == "save":
            spec = _load(args.file)
            saved = zs.put_template(args.name, spec["variants"], fallback_locale=spec.get("fallback_locale", "en"))
            _print(saved, args.json, f"saved template {saved.name!r} version {saved.version}")
        elif action == "list":
            found = zs.templates()
            if args.json:
                show(found, True)
            for t in [] if args.json else found:
                print(f"{t.name:<24} v{t.version:<4} {t.created_at.isoformat()}  {', '.join(t.variants)}")
        elif action == "show":
            show(zs.template(args.name, args.version), args.json)
        elif action == "preview":
            got = zs.preview_template(args.name, _context(args.context), version=args.version, locale=args.locale)
            if args.json:
                show(got, True)
            else:
                print(f"locale:  {got.locale}\ntitle:   {got.title}\nmessage: {got.message}")
                if got.html is not None:
                    print(f"html:    {got.html}")
        elif action == "delete":
            count = zs.delete_template(args.name)
            text = f"deleted template {args.name!r} ({count} version{'' if count == 1 else 's'})"
            _print({"name": args.name, "versions_deleted": count}, args.json, text)
        else:
            when: dict[str, Any] = (
                {"at": datetime.fromisoformat(args.at.replace("Z", "+00:00"))}
                if args.at
                else {"delay": parse_duration_ms(args.delay) / 1000}
            )
            result = zs.schedule_template(
                args.to, args.name, _context(args.context), version=args.version, channels=args.channel, **when
            )
            _print(
                result,
                args.json,
                f"scheduled {result.count} notification(s) with {args.name!r} for {result.scheduled_at.isoformat()}: "
                + ", ".join(map(str, result.notification_ids)),
            )
    return 0


def _load(path: str) -> dict[str, Any]:
    try:
        with sys.stdin if path == "-" else open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(spec, dict) or "variants" not in spec:
        raise ValueError(f'{path} must be a JSON object with "variants" (and "fallback_locale"); see --help')
    return spec


def _context(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--context must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"--context must be a JSON object; got {type(value).__name__}")
    return value


def _print(value: Any, as_json: bool, text: str) -> None:
    if as_json:
        show(value, True)
    else:
        print(text)
