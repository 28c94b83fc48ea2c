"""The daemon's settings (storaged.conf and the command line), as the engine reads them."""
from __future__ import annotations

from dataclasses import dataclass

from ..system.runner import COMMAND_TIMEOUT

MAX_HOST_ID = 2000  # sanlock's limit (lvmlockd(8))


@dataclass
class Settings:
    """Directories, the default pool, timeouts; read from storaged.conf and the command line."""

    config_dir: str = "/etc/storaged"
    state_dir: str = "/var/lib/storaged"
    run_dir: str = "/run/storaged"
    default_pool: bool = True
    default_pool_size: int = 10 * 1024**3
    default_pool_name: str = "default"
    default_pool_vg: str = "vg_default"
    command_timeout: float = COMMAND_TIMEOUT  # seconds an LVM command may take before it is killed
    # Seconds between retries of network sources (iSCSI, NFS) out of reach.
    source_retry_interval: float = 10.0
    libvirt_config_dir: str = "/etc/libvirt"  # where ImportLibvirtPool looks for autostart links
    # Seconds polkit may take to answer a non-interactive check before the call
    # is refused (an interactive one, with a person typing, gets 120).
    polkit_timeout: float = 25.0
    # This host's identity among those sharing a pool (1-2000; 0: not set
    # here, LVM's local/host_id in lvmlocal.conf applies). See shared.py.
    host_id: int = 0
