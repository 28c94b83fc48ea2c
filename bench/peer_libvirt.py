"""libvirt's storage driver as a peer of bench/peers.py: a session libvirtd with a `dir` pool.

  libvirtd runs unprivileged (as `nobody`) in session mode, with HOME and the
  XDG_* folders in a temporary folder of its own: its socket, pool definitions
  and caches live there, so nothing under the host's /run/libvirt, /etc/libvirt
  or /var/lib/libvirt is written (a VM lab may use those; strace shows it only
  looks for hook scripts in /etc/libvirt/hooks, and there are none). It is driven
  through one long-lived `virsh` reading commands on its standard input (one
  connection, no process per call). Its `logical` backend cannot run here: it
  opens /dev/VG/LV after each lvcreate, and this kernel has no device-mapper (nor
  could LVM run as nobody); so the pool is a `dir` pool of 4 MiB raw files,
  which the label printed says.
"""
import grp
import os
import pwd
import shutil
import statistics
import subprocess
import tempfile
import time

from tests.harness import MiB, rss_kib, terminate

LIBVIRTD = "/usr/sbin/libvirtd"
USER, GROUP = "nobody", "nogroup"
POOL_NAME = "bench"
URI = "qemu:///session"


def libvirtd_version() -> str:
    out = subprocess.run([LIBVIRTD, "--version"], capture_output=True, text=True).stdout.split()
    return ".".join(out[-1].split(".")[:2]) if out else "?"


def ensure_libvirtd() -> str | None:
    """Debian's libvirtd and virsh, installed when missing; why not, or None when both are here."""
    if not (os.path.exists(LIBVIRTD) and shutil.which("virsh")):
        print("installing Debian's libvirt-daemon and libvirt-clients")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "libvirt-daemon", "libvirt-clients"],
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=False)
    if not (os.path.exists(LIBVIRTD) and shutil.which("virsh")):
        return f"{LIBVIRTD} or virsh is not installed and could not be installed"
    return None


def label() -> str:
    dm = os.path.exists("/dev/mapper/control") and subprocess.run(
        ["dmsetup", "version"], capture_output=True).returncode == 0
    why = ("it would need root, so the host's /run/libvirt" if dm else
           "it needs device-mapper, which this kernel lacks, and root")
    return f"libvirtd {libvirtd_version()} session, dir pool (not its logical backend: {why})"


class VirshError(RuntimeError):
    pass


class Virsh:
    """One `virsh` shell: each command is written on its stdin and followed by `echo MARK`;
    its output is what comes before MARK. Its first connection is to the in-process test
    driver, so that it starts before libvirtd does; `connect` then reaches libvirtd."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen(["virsh", "-q", "-c", "test:///default"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                     user=USER, group=GROUP, extra_groups=[], start_new_session=True)
        self.buf, self.n = b"", 0

    def run(self, command: str) -> list[str]:
        self.n += 1
        mark = f"@@done{self.n}@@"
        os.write(self.proc.stdin.fileno(), f"{command}\necho {mark}\n".encode())
        needle = b"\n" + mark.encode()  # the echoed `echo MARK` line ends before it
        while needle not in self.buf:
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise VirshError(f"virsh exited ({command}): {self.buf.decode()[-300:]}")
            self.buf += chunk
        head, self.buf = self.buf.split(needle, 1)
        out = [line for line in head.decode().splitlines() if not line.startswith("virsh # ")]
        errors = [line for line in out if line.startswith("error:")]
        if errors:
            raise VirshError(f"{command}: {' '.join(errors)}")
        return out

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            terminate(self.proc, 10)
        self.proc.stdout.close()


class Libvirtd:
    """The interface bench/peers.py's measure() drives (its `bus` argument is not used)."""
    name = "libvirtd"

    def __init__(self, size: int):
        self.size = size
        self.base = tempfile.mkdtemp(prefix="storaged-bench-libvirt-", dir="/tmp")
        self.pool_dir = os.path.join(self.base, "pool")
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": self.base,
                    "XDG_RUNTIME_DIR": os.path.join(self.base, "run"),
                    "XDG_CONFIG_HOME": os.path.join(self.base, "config"),
                    "XDG_CACHE_HOME": os.path.join(self.base, "cache"),
                    "LIBVIRT_AUTOSTART": "0"}  # virsh never spawns a libvirtd of its own
        self.proc, self.virsh = None, None

    def _populate(self):
        for sub in ("pool", "run", "config", "cache"):
            os.mkdir(os.path.join(self.base, sub), 0o700)
        for i in range(self.size):  # present before the pool is defined, as the VG's LVs are
            path = os.path.join(self.pool_dir, f"vol{i}")
            with open(path, "wb") as f:
                f.truncate(4 * MiB)
        uid, gid = pwd.getpwnam(USER).pw_uid, grp.getgrnam(GROUP).gr_gid
        for root, dirs, files in os.walk(self.base):
            for name in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(name, uid, gid)

    def _spawn(self):
        log = open(os.path.join(self.base, "libvirtd.log"), "a")
        self.virsh = Virsh(self.env)
        t = time.perf_counter()
        self.proc = subprocess.Popen([LIBVIRTD], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     user=USER, group=GROUP, extra_groups=[],
                                     start_new_session=True, cwd=self.base)
        log.close()
        return t

    def _connect(self, timeout=600.0):
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                self.virsh.run(f"connect {URI}")
                return
            except VirshError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def check_alive(self):
        """libvirtd and virsh still running, or an error that quotes libvirtd's last log lines
        (the folder holding the log is removed on the way out)."""
        for what, proc in (("libvirtd", self.proc), ("virsh", self.virsh.proc)):
            if proc.poll() is not None:
                with open(os.path.join(self.base, "libvirtd.log"), errors="replace") as f:
                    tail = " | ".join(f.read().splitlines()[-3:])
                raise RuntimeError(f"{what} exited with {proc.returncode}; libvirtd's log ends: {tail}")

    def define(self):
        """Its folders and volumes made, then the pool defined and marked autostart, in a first
        run of libvirtd that is not timed."""
        self._populate()
        self._spawn()
        self._connect()
        self.virsh.run(f"pool-define-as {POOL_NAME} dir --target {self.pool_dir}")
        self.virsh.run(f"pool-autostart {POOL_NAME}")
        self.stop()

    async def start(self, bus=None):
        """libvirtd started with the pool autostarted; until vol-list first answers."""
        t = self._spawn()
        self._connect()
        deadline = time.monotonic() + 600
        while True:
            try:
                vols = self.virsh.run(f"vol-list {POOL_NAME}")
                break
            except VirshError as e:
                if "is not active" not in str(e) or time.monotonic() > deadline:
                    raise
                self.check_alive()
                time.sleep(0.005)  # the pool not started yet
        return time.perf_counter() - t, len([v for v in vols if v.strip()])

    def pid(self):
        return self.proc.pid

    async def gmo(self, bus=None, n=5):
        """vol-list: listAllVolumes, then one GetPath a volume (what virsh does to print it)."""
        out = []
        for _ in range(n):
            t = time.perf_counter()
            self.virsh.run(f"vol-list {POOL_NAME}")
            out.append(time.perf_counter() - t)
        return statistics.median(out)

    async def create(self, bus, name):
        self.virsh.run(f"vol-create-as {POOL_NAME} {name} {4 * MiB} --format raw")

    async def delete(self, bus, name):
        self.virsh.run(f"vol-delete {name} --pool {POOL_NAME}")

    def stop(self):
        if self.virsh:
            self.virsh.stop()
            self.virsh = None
        if self.proc and self.proc.poll() is None:
            terminate(self.proc, 30)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
