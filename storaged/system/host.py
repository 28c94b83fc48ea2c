"""Facts about the host that decide how the daemon behaves."""

import os
import time


def device_mapper_available() -> bool:
    """Whether the kernel has device-mapper (a /dev/mapper/control node alone
    proves nothing: lvm2's packaging creates it on kernels without it)."""
    try:
        with open("/proc/misc", encoding="utf-8") as f:
            return any(line.split()[1:] == ["device-mapper"] for line in f if line.strip())
    except OSError:
        return False


def boot_id() -> str:
    """The kernel's identifier of this boot: what the daemon records is true
    until the next boot, and no longer."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def process_age() -> float:
    """Seconds since this process was started (exec), from the kernel's
    start time: what the interpreter and the imports took before main()."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            # Field 22, counted after the command name, which may hold spaces.
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def systemd_running() -> bool:
    """Whether systemd is the init system (sd_booted()'s test)."""
    return os.path.isdir("/run/systemd/system")


def in_host_namespace(argv: list[str], description: str, timeout: float,
                      systemd: bool | None = None) -> list[str]:
    """`argv` made to run in the host's mount namespace: under systemd, as a
    transient service of PID 1's (`systemd-run --wait --pipe`: its exit status
    and its stderr are the caller's), so that a mount it makes is the host's,
    not the one of storaged.service's own namespace (ProtectSystem= and the
    like give it one), and systemd orders its unmount at shutdown. No default
    dependencies: it must also run while the system shuts down (the shutdown
    unit stops the network pools then). Killed after `timeout` seconds whatever
    becomes of the caller. Without systemd, `argv` itself: the daemon's
    namespace is the host's."""
    if not (systemd_running() if systemd is None else systemd):
        return argv
    return ["systemd-run", "--quiet", "--wait", "--pipe", "--collect", "--service-type=exec",
            "--property=DefaultDependencies=no", f"--property=RuntimeMaxSec={max(1, int(timeout))}",
            f"--description=storaged: {description}", "--", *argv]
