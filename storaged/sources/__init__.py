"""Physical volume sources: what must be brought up before LVM can see a PV."""
from .base import SourceBackend, backend_for

__all__ = ["SourceBackend", "backend_for"]
