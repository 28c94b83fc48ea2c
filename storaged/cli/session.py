"""One storagectl command's talk with storaged: calls, errors as the user reads them, output."""
from __future__ import annotations

import argparse
import json

from .. import client
from ..api import BUS_NAME, ERROR_PREFIX, JOBS_PATH, MANAGER_IFACE, MANAGER_PATH, ROOT_PATH
from ..client.connection import DBUS
from .render import Objects, job_number, one_line

# Methods of the contract that an older storaged may lack. dbus-fast answers
# UnknownMethod both for a missing method and for a path it does not export, so
# for these it means "not supported yet"; for any other it means the object went.
NEWER_METHODS = {"AddPhysicalVolume", "RemovePhysicalVolume", "Resize", "Wipe", "CreateThinPool",
                 "Snapshot", "Revert", "Clone", "Rename", "Activate", "Deactivate", "Open",
                 "ImportPool"}


class CliError(client.Error):
    """A failure with the kind named by the daemon (or found here); `gone` when
    storaged left the bus (stopping, or stopped) rather than refused."""

    def __init__(self, kind: str, message: str, gone: bool = False):
        self.kind = kind
        super().__init__(message)
        self.gone = gone


class Session:
    """storaged.client's calls, with their errors said the way storagectl says them."""

    def __init__(self, storaged: client.Storaged, args: argparse.Namespace):
        self.storaged = storaged
        self.args = args
        self.verb = args.verb
        # Whether storaged has answered this command yet: if it is gone after
        # that, it stopped meanwhile (the calls made so far stand).
        self.answered = False

    async def call(self, path: str, iface: str, member: str, signature: str = "",
                   body=(), destination: str = BUS_NAME):
        try:
            result = await self.storaged.call(path, iface, member, signature, body, destination)
        except client.Error as exc:
            raise self.error(exc, path, member) from None
        self.answered = self.answered or destination == BUS_NAME
        return result

    def error(self, exc: client.Error, path: str, member: str) -> CliError:
        name, text = exc.name, one_line(exc.message)
        if name.startswith(ERROR_PREFIX + "."):
            return CliError(exc.kind, text)
        short = name.removeprefix(f"{DBUS}.Error.")
        where = client.describe_bus(self.storaged.where)
        if short in ("AccessDenied", "InteractiveAuthorizationRequired"):
            # The bus policy refuses before the daemon sees the call.
            return CliError("NotAuthorized", f"{self.verb} needs root (the bus policy refused the call)")
        if short in ("ServiceUnknown", "NameHasNoOwner"):
            if self.answered:
                return CliError("Failed", f"storaged stopped on {where}", gone=True)
            return CliError("Failed", f"storaged is not running on {where}", gone=True)
        if short.startswith("Spawn."):
            return CliError("Failed", f"storaged could not be started on {where}: {text}")
        if short == "NoReply":
            return CliError("Failed", f"storaged did not answer: {text}", gone=True)
        if short == "UnknownMethod" and member in NEWER_METHODS:
            return CliError("Failed", f"this storaged does not support {self.verb} yet")
        if short in ("UnknownMethod", "UnknownObject") and path.startswith(JOBS_PATH + "/"):
            return CliError("NotFound", f"there is no job {job_number(path)}: it never existed, "
                                        f"or it finished more than five minutes ago")
        if short in ("UnknownMethod", "UnknownObject"):
            return CliError("NotFound", f"{path} is gone (removed meanwhile?)")
        return CliError("Failed", f"{name}: {text}" if text else name)

    async def get(self, path: str, iface: str, prop: str):
        return (await self.call(path, "org.freedesktop.DBus.Properties", "Get", "ss", [iface, prop])).value

    async def pool(self, name: str) -> str:
        return await self.call(MANAGER_PATH, MANAGER_IFACE, "LookupPool", "s", [name])

    async def volume(self, pool: str, name: str) -> str:
        return await self.call(MANAGER_PATH, MANAGER_IFACE, "LookupVolume", "ss", [pool, name])

    async def objects(self) -> Objects:
        try:
            tree = await self.storaged.managed_objects()
        except client.Error as exc:
            raise self.error(exc, ROOT_PATH, "GetManagedObjects") from None
        self.answered = True
        return Objects(tree)

    def show(self, data, text: str) -> None:
        """The JSON for scripts, or the text for people."""
        print(json.dumps(data, indent=2) if self.args.json else text.rstrip("\n"))
