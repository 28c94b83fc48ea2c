"""A real dbus-daemon with the project's policy, and storaged as a subprocess
started the way systemd starts it (a NOTIFY_SOCKET it must report READY=1 to)."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from dbus_fast import DBusError, Message, MessageType

from storaged.client import Error as ClientError, Storaged
from storaged.embedded import write_bus_config

BUS_NAME = "org.storaged.Storaged1"
MANAGER = "/org/storaged/Storaged1/Manager"
ROOT = "/org/storaged/Storaged1"
# Written out here rather than taken from storaged.bus.names: the tests hold
# the daemon to the contract, not to itself.
MGR = "org.storaged.Storaged1.Manager"
POOL = "org.storaged.Storaged1.Pool"
VOL = "org.storaged.Storaged1.Volume"
MiB = 1024 * 1024
# A bus policy that lets everyone send anything to storaged: with it only the
# daemon's own check stands between a caller and the storage.
PERMISSIVE_POLICY = os.path.join(os.path.dirname(__file__), "permissive-policy.conf")


class TestBus:
    def __init__(self, base: str, policy: str | None = None):
        self.dir = os.path.join(base, "bus")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(base, 0o755)
        os.chmod(self.dir, 0o755)
        sock = os.path.join(self.dir, "socket")
        conf = write_bus_config(os.path.join(self.dir, "bus.conf"), sock, policy=policy)
        self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork",
                                      "--nopidfile", "--print-address"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon did not start")

    def stop(self) -> None:
        terminate(self.proc, 10)


def terminate(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Daemon:
    """storaged in a subprocess; `start()` returns once it has sent READY=1."""

    def __init__(self, base: str, address: str, *extra: str, env: dict | None = None):
        self.base = base
        self.env = env or {}
        self.address = address
        self.extra = list(extra)
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(base, "storaged.log")
        self.notifications: list[str] = []

    def start(self, timeout: float = 60) -> "Daemon":
        notify_path = os.path.join(self.base, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(notify_path)
        ns.settimeout(0.5)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path, PYTHONUNBUFFERED="1", **self.env)
        argv = [sys.executable, "-m", "storaged.daemon", "--bus", self.address,
                "--config-dir", os.path.join(self.base, "etc"),
                "--state-dir", os.path.join(self.base, "lib"),
                "--run-dir", os.path.join(self.base, "run"), "--log-level", "debug", *self.extra]
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"storaged exited with {self.proc.returncode}:\n{self.log()}")
                try:
                    msg = ns.recv(4096).decode()
                except socket.timeout:
                    continue
                self.notifications.append(msg)
                if "READY=1" in msg.split("\n"):
                    return self
            raise RuntimeError(f"storaged sent no READY=1 within {timeout} s:\n{self.log()}")
        finally:
            ns.close()

    def log(self) -> str:
        try:
            with open(self.log_path) as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def busctl(address: str, *args: str, user: str | None = None,
           check: bool = False) -> subprocess.CompletedProcess:
    argv = ["busctl", f"--address={address}", *args]
    if user:
        argv = ["setpriv", f"--reuid={user}", "--regid=65534", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    return predicate()


class Signals:
    def __init__(self, bus):
        self.seen = []
        self.bus = bus
        bus.add_message_handler(self._on)

    def _on(self, msg):
        if msg.message_type == MessageType.SIGNAL:
            self.seen.append(msg)
        return False

    def named(self, member, path=None):
        return [m for m in self.seen if m.member == member and (path is None or m.path == path)]


async def subscribe(client):
    await client.bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                  interface="org.freedesktop.DBus", member="AddMatch",
                                  signature="s", body=["type='signal',sender='org.storaged.Storaged1'"]))
    return Signals(client.bus)


ERROR_PREFIX = "org.storaged.Storaged1.Error."


async def expect_error(kind, coro):
    """Await coro, which must fail with org.storaged.Storaged1.Error.<kind>; the message."""
    with pytest.raises(DBusError) as info:
        await coro
    assert info.value.type == ERROR_PREFIX + kind, (info.value.type, info.value.text)
    return info.value.text


async def bus_call(bus, path, iface, member, sig="", body=()):
    """One method call on storaged through a connection of the caller's own:
    storaged.client's call, its error raised as the DBusError it came as (the
    tests hold the daemon to the D-Bus error names, which the client keeps)."""
    try:
        return await Storaged(bus).call(path, iface, member, sig, body)
    except ClientError as exc:
        raise DBusError(exc.name, exc.message) from None


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
