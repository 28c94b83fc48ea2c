"""The embedded default: a self-contained instance with its own bus and state.

`storaged --embedded DIR` starts a private dbus-daemon with the project's own
bus policy, keeps every file under DIR, stops its pools when it exits (unlike
the system daemon, it is no host's storage), and, on a kernel without device-mapper,
gives LVM a private configuration in metadata-only mode (activation off) so
that the instance still runs. LVM's devices file keeps that LVM world to the
devices this instance created.
"""
from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from . import instance
from .system import runner
from .system.host import device_mapper_available

LVM_CONF = """\
# Written by storaged --embedded. {why}
global {{
    activation = {activation}
    # Its own lock files: the devices file's lock (D_system.devices) and the
    # global lock would otherwise be shared with every other LVM world on the host.
    locking_dir = "{locking_dir}"
}}
devices {{
    use_devicesfile = 1
    obtain_device_list_from_udev = 0
    # No /run/lvm/hints: a file (and a lock) shared with every LVM world on the host.
    hints = "none"
}}
activation {{
    udev_sync = {udev}
    udev_rules = {udev}
    monitoring = 0
}}
"""

_BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>storaged-embedded</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Peer"/>
  </policy>
  <include ignore_missing="yes">{policy}</include>
</busconfig>
"""


def write_lvm_config(directory: str, activation: bool) -> str:
    """A private LVM_SYSTEM_DIR whose devices file starts empty."""
    os.makedirs(os.path.join(directory, "devices"), exist_ok=True)
    os.makedirs(os.path.join(directory, "lock"), mode=0o700, exist_ok=True)
    why = ("device-mapper is present." if activation else
           "This kernel has no device-mapper: metadata only.")
    with open(os.path.join(directory, "lvm.conf"), "w") as f:
        f.write(LVM_CONF.format(why=why, activation=int(activation), udev=int(activation),
                                locking_dir=os.path.join(directory, "lock")))
    devices = os.path.join(directory, "devices", "system.devices")
    if not os.path.exists(devices):
        open(devices, "w").close()
    return directory


def write_bus_config(conf: str, socket_path: str, policy: str | None = None) -> str:
    """A system-bus-like dbus-daemon config on `socket_path` that includes the
    project's own policy file, so the policy is what decides."""
    with open(conf, "w") as f:
        f.write(_BUS_CONF.format(socket=socket_path, policy=policy or policy_file()))
    return conf


def policy_file() -> str:
    """The project's own bus policy: from the source tree, else as installed."""
    here = Path(__file__).resolve().parent.parent / "dbus" / "org.storaged.Storaged1.conf"
    if here.exists():
        return str(here)
    return "/usr/share/dbus-1/system.d/org.storaged.Storaged1.conf"


@dataclass
class Embedded:
    """A running embedded instance: its folder, bus address and dbus-daemon."""

    root: str
    address: str
    bus: asyncio.subprocess.Process | None = None

    @property
    def config_dir(self) -> str:
        return os.path.join(self.root, "etc")

    @property
    def state_dir(self) -> str:
        return os.path.join(self.root, "lib")

    @property
    def run_dir(self) -> str:
        return os.path.join(self.root, "run")

    async def stop(self) -> None:
        if self.bus and self.bus.returncode is None:
            self.bus.terminate()
            await self.bus.wait()


async def start(root: str, say) -> Embedded:
    root = os.path.abspath(root)
    instance.hold(root)  # before the bus socket, which a second instance would take over
    for sub in ("etc", "lib", "run", "bus"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    if "LVM_SYSTEM_DIR" not in os.environ:
        dm = device_mapper_available()
        os.environ["LVM_SYSTEM_DIR"] = write_lvm_config(os.path.join(root, "lvm"), dm)
        if not dm:
            say("this kernel has no device-mapper: LVM runs in metadata-only mode "
                "(volumes are allocated but get no /dev/VG/LV device nodes)")
    socket_path = os.path.join(root, "bus", "socket")
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    conf = write_bus_config(os.path.join(root, "bus", "bus.conf"), socket_path)
    with open(os.path.join(root, "bus", "dbus-daemon.log"), "ab") as bus_log:
        proc = await runner.spawn(["dbus-daemon", f"--config-file={conf}", "--nofork",
                                   "--nopidfile", "--print-address"],
                                  stdout=asyncio.subprocess.PIPE, stderr=bus_log)
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    if not line:
        raise RuntimeError("the embedded dbus-daemon did not start")
    # The guid only pins the server instance; the path is what a user types.
    address = line.decode().strip().split(",guid=")[0]
    emb = Embedded(root=root, address=address, bus=proc)
    say(f"embedded instance under {root}")
    say(f"talk to it:  busctl --address={address} tree org.storaged.Storaged1")
    # The storagectl beside this Python (the venv's under `make run`), else the one on PATH.
    ctl = os.path.join(os.path.dirname(sys.executable), "storagectl")
    ctl = os.path.relpath(ctl) if os.path.exists(ctl) else "storagectl"
    say(f"or with:     STORAGED_BUS={address} {ctl} pool-list")
    say(f"inspect LVM: LVM_SYSTEM_DIR={os.environ['LVM_SYSTEM_DIR']} vgs")
    say("on exit the embedded instance stops its pools (its loop devices are detached)")
    return emb
