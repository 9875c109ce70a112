"""``zsched token create|list|revoke``: the API tokens."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

import msgspec

from ..settings import Settings, parse_duration_ms
from .output import show


def _lifetime(text: str) -> int:
    """``--expires-in``: a positive duration such as ``30d`` or ``12h`` (a bare number is seconds), in ms."""
    try:
        ms = parse_duration_ms(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if ms <= 0:
        raise argparse.ArgumentTypeError(f"must be positive; got {text!r}")
    return ms


def _when(ms: int | None) -> str:
    return "never" if ms is None else datetime.fromtimestamp(ms / 1000).isoformat(timespec="seconds")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Register ``token create``, ``token list`` and ``token revoke``."""
    token = sub.add_parser("token", help="create, list or revoke API tokens").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    cmd = token.add_parser("create", parents=[common], help="create a token; it is printed once, on the last line")
    cmd.add_argument("--user", required=True, help="the user id the token acts as (a recipient id)")
    cmd.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="SCOPE",
        help="grant a scope; schedule:any lets it schedule for other recipients, contacts:write manage anyone's "
        "contact data and erasures, preferences:write set anyone's zone, quiet hours and opt-outs (repeatable)",
    )
    cmd.add_argument("--admin", action="store_true", help="may see and change every notification, and stats")
    cmd.add_argument("--name", help="a note for `zsched token list`, e.g. billing-service")
    cmd.add_argument(
        "--expires-in",
        type=_lifetime,
        metavar="DURATION",
        help="refuse the token this long after now, e.g. 30d or 12h (default: never expires)",
    )
    cmd.add_argument("--json", action="store_true", help="print JSON: the token's record and, once, its secret")
    cmd = token.add_parser(
        "list", parents=[common], help="every token's id, user, scopes, expiry and last use (never a secret)"
    )
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = token.add_parser("revoke", parents=[common], help="revoke a token by its id (from list) or the token")
    cmd.add_argument("token", help="the id shown by `zsched token list`, or the token itself")
    cmd.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..web.auth import TokenStore

    store = TokenStore(settings.redis.prefix)
    with settings.scheduler() as zs:
        if args.token_command == "create":
            token, p = store.create(
                zs.redis,
                args.user,
                scopes=tuple(args.scope),
                admin=args.admin,
                name=args.name,
                expires_in_ms=args.expires_in,
            )
            if args.json:
                show({**msgspec.structs.asdict(p), "token": token}, True)
                return 0
            print(
                f"created token {p.id} for user {p.user!r} (scopes: {', '.join(p.scopes) or 'none'}; "
                f"admin: {'yes' if p.admin else 'no'}; expires: {_when(p.expires_at)})"
            )
            print("it is shown only this once; send it as 'Authorization: Token <token>':")
            print(token)
        elif args.token_command == "list":
            principals, used = store.list(zs.redis), store.last_used(zs.redis)
            now_ms = store.clock_ms()
            if args.json:
                show([{**msgspec.structs.asdict(p), "last_used_at": used.get(p.id)} for p in principals], True)
            for p in [] if args.json else principals:
                expires = _when(p.expires_at) + (" (expired)" if p.expired(now_ms) else "")
                print(
                    f"{p.id}  user={p.user}  scopes={','.join(p.scopes) or '-'}  admin={'yes' if p.admin else 'no'}"
                    f"  created={_when(p.created_at)}  expires={expires}  last_used={_when(used.get(p.id))}"
                    f"{f'  name={p.name}' if p.name else ''}"
                )
        elif not store.revoke(zs.redis, args.token):
            print(
                f"zsched: error: no single token matches {args.token!r}; see `zsched token list` for ids",
                file=sys.stderr,
            )
            return 1
        elif args.json:
            show({"revoked": True}, True)
        else:
            print("revoked")
    return 0
