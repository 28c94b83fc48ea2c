"""Crash points found by running the code: wrappers for every command on PATH
record what the daemon runs and SIGKILL it before or after a chosen one.

Test-only. The daemon knows nothing of this: it finds the wrappers first on
the PATH the test gives it, and passes CRASH_DIR and CRASH_REAL_PATH on to
the commands it runs like any other environment variable.

A command is named by its key, the program and its first argument ("lvm
vgcreate", "losetup --find"), and its occurrence among the commands with that
key since the wrappers were armed: stable across runs, whatever reports a
background refresh runs in between.
"""
from __future__ import annotations

import os

# Commands that change nothing: a kill before or after one is the same state
# as a kill around the command that changes something next to it.
READERS = {("lvm", "fullreport"), ("lvm", "lvs"), ("lvm", "vgs"), ("lvm", "pvs"),
           ("lvm", "version"), ("lvm", "vgscan"), ("lvm", "pvscan"), ("losetup", "--associated"),
           ("losetup", "--list"), ("blkid", None)}

WRAPPER = r"""#!/bin/sh
# Test fault injection (tests/crashpoints.py): record the command, maybe SIGKILL the daemon.
name=${0##*/}
PATH=$CRASH_REAL_PATH
real=$(command -v "$name")
if [ -n "$CRASH_DIR" ] && [ -e "$CRASH_DIR/armed" ]; then
  printf '%s %s\n' "$PPID" "$name $*" >> "$CRASH_DIR/log"
  if [ -e "$CRASH_DIR/target" ]; then
    { read -r tkey; read -r tnth; read -r twhen; } < "$CRASH_DIR/target"
    if [ "$name ${1-}" = "$tkey" ]; then
      echo >> "$CRASH_DIR/hits"
      if [ "$(wc -l < "$CRASH_DIR/hits")" = "$tnth" ]; then
        if [ "$twhen" = after ]; then "$real" "$@"; fi
        printf '%s %s\n' "$twhen" "$name $*" > "$CRASH_DIR/killed"
        kill -9 "$PPID"
        exit 137
      fi
    fi
  fi
fi
exec "$real" "$@"
"""


def make_wrappers(bindir: str) -> None:
    """One script, linked under the name of every program on PATH."""
    os.makedirs(bindir, exist_ok=True)
    script = os.path.join(bindir, ".wrapper")
    with open(script, "w") as f:
        f.write(WRAPPER)
    os.chmod(script, 0o755)
    seen = set()
    for d in os.environ["PATH"].split(":"):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            if name in seen or name.startswith(".") or not os.access(os.path.join(d, name), os.X_OK):
                continue
            seen.add(name)
            os.symlink(".wrapper", os.path.join(bindir, name))


class Crasher:
    """One world's recording/killing state (a folder the wrappers read)."""

    def __init__(self, base: str, bindir: str):
        self.dir = os.path.join(base, "crash")
        os.makedirs(self.dir, exist_ok=True)
        self.env = {"PATH": f"{bindir}:{os.environ['PATH']}", "CRASH_DIR": self.dir,
                    "CRASH_REAL_PATH": os.environ["PATH"]}

    def _path(self, name):
        return os.path.join(self.dir, name)

    def reset(self) -> None:
        for name in ("armed", "log", "target", "hits", "killed"):
            if os.path.exists(self._path(name)):
                os.unlink(self._path(name))

    def arm(self, target: tuple[str, int, str] | None = None) -> None:
        self.reset()
        if target:
            key, nth, when = target
            with open(self._path("target"), "w") as f:
                f.write(f"{key}\n{nth}\n{when}\n")
        open(self._path("armed"), "w").close()

    def disarm(self) -> None:
        if os.path.exists(self._path("armed")):
            os.unlink(self._path("armed"))

    def killed(self) -> str | None:
        try:
            with open(self._path("killed")) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def recorded(self, daemon_pid: int) -> list[tuple[str, int]]:
        """The changing commands the daemon ran since arm(), as (key, occurrence)."""
        try:
            with open(self._path("log")) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out, seen = [], {}
        for line in lines:
            ppid, name, *args = line.split(" ")
            if int(ppid) != daemon_pid:
                continue  # run by a command the daemon ran, not by the daemon
            first = args[0] if args else ""
            if (name, first) in READERS or (name, None) in READERS:
                continue
            key = f"{name} {first}"
            seen[key] = seen.get(key, 0) + 1
            out.append((key, seen[key]))
        return out


def points(recorded: list[tuple[str, int]]) -> list[tuple[str, int, str]]:
    """Every crash point of one run: before and after each changing command."""
    return [(key, nth, when) for key, nth in recorded for when in ("before", "after")]
