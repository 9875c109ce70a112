"""``zsched reshard``: move every pending notification to a new partition count while delivery goes on."""

from __future__ import annotations

import argparse

from ..engine.reshard import MAX_PARTITIONS, ReshardProgress
from ..settings import Settings
from .output import show
from .progress import Progress

DESCRIPTION = """\
Change the partition count of a keyspace that is in use, without stopping producers or workers.

The partitions are numbered from 0; a notification id carries its partition, and a recipient's notifications
live in the partition its id hashes to. This command opens a new generation of --partitions partitions (new
keys, new ids above every old one), seals the old partitions (a schedule call there is sent on to the new
ones, by zsched itself), and moves each pending notification into its recipient's new partition under a new
id, with its due time, payload, priority, creator and attempts kept. Workers switch to the new partitions
within a second; what they hold in the old ones is acked there. A notification is in exactly one place at
every moment of the move, so none is lost, sent early or sent twice by it. An old id keeps answering: status,
cancel and reschedule follow it to the id it was re-issued under.

Run it while everything runs. Gateways reconnect their sockets to the new partitions by themselves (close
code 1012). Once it is done, set ZSCHED_PARTITIONS to the new count for processes started later (ones started
with the old count are refused with a message saying so). It is safe to interrupt: re-run the same command and
it finishes the move (an entry half moved is finished, never created twice).

Not moved: recurring schedules (the command refuses to start while any exist: delete them, reshard, create
them again), and delivered history: sent, cancelled and failed records stay in the old partitions (status,
lists and stats still read them there), and inbox streams and read marks are not carried over (a resumed
socket is told its inbox was truncated). See docs/resharding.md."""

EPILOG = """\
examples:
  zsched reshard --partitions 6                      move from the current count to 6 partitions
  zsched reshard --partitions 6 --max-moves 1000     move about 1000 entries now; run again to go on
  ZSCHED_REDIS_URL=redis://db:6379/0 zsched reshard --partitions 12 --json
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], connection: argparse.ArgumentParser) -> None:
    """Register ``reshard``: ``connection`` holds the common options but ``--partitions``, which is its own."""
    cmd = sub.add_parser(
        "reshard",
        parents=[connection],
        help="move pending notifications to a new partition count while delivery goes on (re-run to resume)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument(
        "--partitions",
        type=int,
        required=True,
        metavar="N",
        help=f"the partition count to move to (1 to {MAX_PARTITIONS}); the current one is read from Redis",
    )
    cmd.add_argument(
        "--batch", type=int, default=100, help="due entries taken per script call (default 100; a call counts once)"
    )
    cmd.add_argument(
        "--max-moves",
        type=int,
        help="stop after moving about this many due entries and leave the rest for a re-run (default: all)",
    )
    cmd.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    cmd.add_argument("--json", action="store_true", help="print the outcome as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``reshard``: the target count comes from --partitions (required here), the current one from Redis."""
    if not 1 <= args.partitions <= MAX_PARTITIONS:
        raise ValueError(f"--partitions must be between 1 and {MAX_PARTITIONS}; got {args.partitions}")
    if args.batch < 1:
        raise ValueError(f"--batch must be at least 1; got {args.batch}")
    if args.max_moves is not None and args.max_moves < 1:
        raise ValueError(f"--max-moves must be at least 1; got {args.max_moves}")
    bar: Progress | None = None

    def seen(step: ReshardProgress) -> None:
        nonlocal bar
        if bar is None:
            bar = Progress(
                f"moving to {step.partitions_to} partitions",
                step.entries + step.left,
                enabled=not args.no_progress and not args.json,
            )
        bar.total = max(bar.total, bar.done + step.entries + step.left)
        bar.update(step.entries)

    with settings.scheduler() as zs:
        try:
            outcome = zs.reshard(args.partitions, batch=args.batch, max_moves=args.max_moves, on_progress=seen)
        finally:
            if bar is not None:
                bar.close()
    if args.json:
        show(outcome, True)
    elif outcome.done:
        print(
            f"moved {outcome.moved} pending notification(s) from {outcome.partitions_from} to "
            f"{outcome.partitions_to} partitions (generation {outcome.generation}); the move is done. Start new "
            f"processes with ZSCHED_PARTITIONS={outcome.partitions_to}."
        )
    else:
        print(
            f"moved {outcome.moved} pending notification(s) ({outcome.entries} due entries) toward "
            f"{outcome.partitions_to} partitions; {outcome.left} entries are left: run the same command again "
            "to finish"
        )
    if outcome.recurring_left:
        print(
            f"warning: {outcome.recurring_left} recurring schedule(s) were created in the old partitions during the "
            "move and are not advanced there: delete them and create them again"
        )
    return 0
