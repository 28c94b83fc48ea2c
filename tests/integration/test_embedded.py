"""`storaged --embedded DIR` (what `make run` starts): one instance per folder,
and its private bus dies with it, however it dies."""
import os
import signal
import socket
import subprocess
import sys
import time

from tests.harness import MANAGER, MGR, POOL, busctl
from tests.integration.test_cli import REPO
from tests.lvmenv import loops_under

BUS = "org.storaged.Storaged1"


class Embedded:
    def __init__(self, world, root: str):
        self.root = root
        self.notify = os.path.join(world.base, f"notify-{len(os.listdir(world.base))}.sock")
        self.log = os.path.join(world.base, "embedded.log")
        self.proc = None

    def start(self, expect_ready: bool = True, timeout: float = 60):
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(self.notify)
        ns.settimeout(0.5)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify, PYTHONUNBUFFERED="1")
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "storaged.daemon", "--embedded",
                                          self.root, "--default-pool-size", "64M"],
                                         env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if "READY=1" in ns.recv(4096).decode().split("\n"):
                        return self
                except socket.timeout:
                    pass
        finally:
            ns.close()
            os.unlink(self.notify)
        assert not expect_ready, f"no READY=1:\n{open(self.log).read()[-3000:]}"
        return self

    @property
    def address(self) -> str:
        return f"unix:path={self.root}/bus/socket"

    def bus_pids(self) -> list[int]:
        conf = f"--config-file={self.root}/bus/bus.conf"
        out = subprocess.run(["pgrep", "-f", "--", conf], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(60)


def default_pool_state(address: str) -> str:
    r = busctl(address, "call", BUS, MANAGER, MGR, "LookupPool", "s", "default")
    assert r.returncode == 0, r.stderr
    path = r.stdout.split()[1].strip('"')
    r = busctl(address, "get-property", BUS, path, POOL, "State")
    return r.stdout.split()[1].strip('"')


def test_a_second_instance_in_the_same_folder_refuses_and_the_first_keeps_serving(world):
    root = world.path("emb")
    first = Embedded(world, root).start()
    second = Embedded(world, root)
    try:
        second.start(expect_ready=False, timeout=20)
        assert second.proc.wait(20) != 0
        assert f"already running on {root} (pid {first.proc.pid})" in open(second.log).read()
        assert first.proc.poll() is None
        assert default_pool_state(first.address) == "running"  # its socket was not taken over
        assert len(first.bus_pids()) == 1
    finally:
        second.stop()
        first.stop()
    assert loops_under(root) == []  # the embedded instance stops its pools on exit


def test_sigkill_takes_the_bus_along_and_the_next_start_finds_the_pool_running(world):
    root = world.path("emb")
    emb = Embedded(world, root).start()
    try:
        [bus_pid] = emb.bus_pids()
        loops = loops_under(root)
        assert len(loops) == 1
        emb.stop(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and emb.bus_pids():
            time.sleep(0.1)
        assert emb.bus_pids() == [], "the embedded dbus-daemon outlived its storaged"
        emb.start()
        assert default_pool_state(emb.address) == "running"
        assert loops_under(root) == loops  # the same loop, found up, not attached again
    finally:
        emb.stop()
    assert loops_under(root) == []


def test_a_second_daemon_on_the_same_config_and_state_directories_refuses(world):
    """Two system daemons on one config directory would recover each other's
    intents: the second one says who holds it and exits before touching anything."""
    first = world.daemon()
    second = subprocess.run([sys.executable, "-m", "storaged.daemon", "--bus", world.address,
                             "--config-dir", world.path("etc"), "--state-dir", world.path("lib"),
                             "--run-dir", world.path("run2"), "--no-default-pool"],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert second.returncode == 1
    assert f"storaged is already running on {world.path('etc')} (pid {first.proc.pid})" in second.stderr
    assert first.proc.poll() is None
