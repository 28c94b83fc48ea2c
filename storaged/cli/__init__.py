"""storagectl: the command-line client of storaged, virsh-like verbs on top of storaged.client.

It talks to the daemon over D-Bus only, with plain method calls (no proxy
introspection: one round trip less per object), and never runs LVM or
imports the engine or lxml. Pools and volumes are named on the command line
and looked up with LookupPool/LookupVolume.
"""
from .main import EXIT_CODES, INTERRUPTED, main, parser
from .session import CliError
from .verbs import VERBS

__all__ = ["CliError", "EXIT_CODES", "INTERRUPTED", "VERBS", "main", "parser"]
