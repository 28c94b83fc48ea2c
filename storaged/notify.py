"""sd_notify and the journal, working quietly when neither is there."""
from __future__ import annotations

import logging
import os
import socket
import sys

try:
    from systemd import daemon as _sd_daemon
    from systemd import journal as _journal
except ImportError:  # systemd-python is optional
    _sd_daemon = None
    _journal = None


def notify(state: str) -> bool:
    """Tell the service manager (if any) about our state, e.g. READY=1."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return False
    try:
        if _sd_daemon is not None:
            return bool(_sd_daemon.notify(state))
        addr = os.environ["NOTIFY_SOCKET"]
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), addr)
        return True
    except OSError as exc:  # a service manager that went away is no reason to fail
        logging.getLogger(__name__).debug("sd_notify(%r): %s", state, exc)
        return False


def setup_logging(level: str) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    # Under systemd (JOURNAL_STREAM set) log to the journal with structured
    # fields; otherwise to stderr.
    if _journal is not None and os.environ.get("JOURNAL_STREAM"):
        handler: logging.Handler = _journal.JournalHandler(SYSLOG_IDENTIFIER="storaged")
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("storaged: %(levelname)s: %(message)s"))
    root.handlers[:] = [handler]
