"""Bus names and object paths (DESIGN.md, "D-Bus API (version 1)")."""

BUS_NAME = "org.storaged.Storaged1"
ROOT_PATH = "/org/storaged/Storaged1"
MANAGER_PATH = f"{ROOT_PATH}/Manager"
MANAGER_IFACE = "org.storaged.Storaged1.Manager"
POOL_IFACE = "org.storaged.Storaged1.Pool"
VOLUME_IFACE = "org.storaged.Storaged1.Volume"
JOB_IFACE = "org.storaged.Storaged1.Job"
ERROR_PREFIX = "org.storaged.Storaged1.Error"


def _key(uuid: str) -> str:
    # Object path elements allow [A-Za-z0-9_] only; LVM and RFC 4122 UUIDs use '-'.
    return uuid.replace("-", "_")


def pool_path(pool_uuid: str) -> str:
    return f"{ROOT_PATH}/pools/{_key(pool_uuid)}"


def volume_path(pool_uuid: str, lv_uuid: str) -> str:
    return f"{pool_path(pool_uuid)}/volumes/{_key(lv_uuid)}"


def job_path(job_id: int) -> str:
    return f"{ROOT_PATH}/jobs/{job_id}"
