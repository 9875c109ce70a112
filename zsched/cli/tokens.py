"""``zsched token create|list|revoke``: the API tokens."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from ..settings import Settings
from .output import show


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
        help="grant a scope; schedule:any lets it schedule for other recipients (repeatable)",
    )
    cmd.add_argument("--admin", action="store_true", help="may see and change every notification, and stats")
    cmd.add_argument("--name", help="a note for `zsched token list`, e.g. billing-service")
    cmd = token.add_parser("list", parents=[common], help="every token's id, user and scopes (never a secret)")
    cmd.add_argument("--json", action="store_true", help="print JSON")
    cmd = token.add_parser("revoke", parents=[common], help="revoke a token by its id (from list) or the token")
    cmd.add_argument("token", help="the id shown by `zsched token list`, or the token itself")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..web.auth import TokenStore

    store = TokenStore(settings.redis.prefix)
    with settings.scheduler() as zs:
        if args.token_command == "create":
            token, p = store.create(zs.redis, args.user, scopes=tuple(args.scope), admin=args.admin, name=args.name)
            print(
                f"created token {p.id} for user {p.user!r} (scopes: {', '.join(p.scopes) or 'none'}; "
                f"admin: {'yes' if p.admin else 'no'})"
            )
            print("it is shown only this once; send it as 'Authorization: Token <token>':")
            print(token)
        elif args.token_command == "list":
            principals = store.list(zs.redis)
            if args.json:
                show(principals, True)
            for p in [] if args.json else principals:
                made = datetime.fromtimestamp(p.created_at / 1000).isoformat(timespec="seconds")
                print(
                    f"{p.id}  user={p.user}  scopes={','.join(p.scopes) or '-'}  admin={'yes' if p.admin else 'no'}"
                    f"  created={made}{f'  name={p.name}' if p.name else ''}"
                )
        elif not store.revoke(zs.redis, args.token):
            print(
                f"zsched: error: no single token matches {args.token!r}; see `zsched token list` for ids",
                file=sys.stderr,
            )
            return 1
        else:
            print("revoked")
    return 0
