"""The daemon's D-Bus connection: the same burst-proof one as every client's."""
from ..client.transport import PatientMessageBus

__all__ = ["PatientMessageBus"]
