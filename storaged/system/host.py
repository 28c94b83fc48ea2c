"""Facts about the host that decide how the daemon behaves."""


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
