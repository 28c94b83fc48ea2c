"""storagectl's entry point: the argument parser, the exit codes, and main()."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys

from .. import client
from ..errors import StoragedError
from ..client.objects import words
from .render import one_line
from .session import CliError, Session
from .verbs import VERBS
from . import volumes  # noqa: F401  (registers the verbs of thin pools, snapshots, clones, transfers)

# The exit status says what kind of error it was; `storagectl --help` shows this table.
EXIT_CODES = {
    "Failed": 1, "InvalidArgument": 2, "NotFound": 3, "NotAuthorized": 4, "AlreadyExists": 5,
    "NoSpace": 6, "Busy": 7, "NotSupported": 8, "Degraded": 9, "Cancelled": 10,
}
INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, like every other error, and the usage exit code."""
        raise CliError("InvalidArgument", f"{message} (see '{self.prog} --help')")


NOTES = {1: "failed, or any other error (no bus, storaged not running)",
         2: "invalid argument, or a usage error"}
EPILOG = "exit status:\n" + "\n".join(
    f"  {code:>3}  {NOTES.get(code) or ' '.join(words(kind)).lower()}"
    for kind, code in sorted(EXIT_CODES.items(), key=lambda kv: kv[1])
) + f"\n  {INTERRUPTED}  interrupted (Ctrl-C)\n\nsizes: bytes, or a number with a unit: 10G, 512MiB, 1.5T ..."


def parser() -> Parser:
    p = Parser(prog="storagectl", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Manage storaged's storage pools and volumes over D-Bus.")
    p.add_argument("--bus", default=None,
                   help=f"system, session, or a D-Bus address such as unix:path=/run/x/bus "
                        f"(default: ${client.BUS_ENV}, else system)")
    sub = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, v in VERBS.items():
        s = sub.add_parser(name, help=v.help, description=v.help[0].upper() + v.help[1:] + ".")
        for flags, kw in v.arguments:
            s.add_argument(*flags, **kw)
        if v.reading:
            s.add_argument("--json", action="store_true", help="print JSON, for scripts")
        if v.job:
            s.add_argument("--no-wait", action="store_true", help="print the job's path and return")
            s.add_argument("--no-progress", action="store_true", help="plain lines, not a progress bar")
    return p


async def run(a: argparse.Namespace) -> None:
    storaged = await client.connect(a.bus)
    try:
        await VERBS[a.verb].run(Session(storaged, a), a)
    finally:
        storaged.bus.disconnect()


def main(argv: list[str] | None = None) -> int:
    a = None
    try:
        a = parser().parse_args(argv)  # sizes and files are checked here, before any call
        a.json = getattr(a, "json", False)
        asyncio.run(run(a))
        return 0
    except (client.Error, StoragedError) as exc:  # StoragedError: parse_size's
        kind = "" if exc.kind == "Failed" else " ".join(words(exc.kind)).lower() + ": "
        print(f"storagectl: {kind}{one_line(exc.message)}", file=sys.stderr)
        return EXIT_CODES.get(exc.kind, 1)
    except KeyboardInterrupt:
        if not a or a.verb != "monitor":  # Ctrl-C is how a monitor ends
            print("storagectl: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (storagectl ... | head); say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # never a traceback, but say what it was
        print(f"storagectl: unexpected error: {type(exc).__name__}: {one_line(str(exc))}", file=sys.stderr)
        return 1

