"""Keeps the bus objects in step with the engine: export, unexport, and one
signal per change. Implements the engine's Listener.

Volumes are many (10,000 in a pool is a goal), and exporting one costs
dbus-fast an introspection of the interface class and a handler per method.
So a volume's object is exported when a call first reaches it (or its pool's
node is introspected: `busctl tree`); until then GetManagedObjects and the
signals, which this module sends itself for volumes, are all there is of it,
and all a client can tell."""
import logging

from dbus_fast import Message, MessageType, Variant

from ..api import (MANAGER_PATH, POOL_IFACE, POOL_PROPERTIES, ROOT_PATH, VOLUME_IFACE,
                   VOLUME_PROPERTIES, job_path, pool_path, volume_path)
from ..engine import Engine
from ..model.state import Pool, Volume
from .calls import Callers, remember_call
from .connection import PatientMessageBus
from .job import JobInterface
from .manager import ManagerInterface, ObjectManagerInterface
from .pool import PoolInterface
from .properties import table_props
from .volume import VolumeInterface

log = logging.getLogger(__name__)

OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"
PROPERTIES = "org.freedesktop.DBus.Properties"
POOLS_PREFIX = ROOT_PATH + "/pools/"


def _is_volume(path: str) -> bool:
    return path.startswith(POOLS_PREFIX) and "/volumes/" in path


class StoragedBus(PatientMessageBus):
    """dbus-fast emits InterfacesAdded/Removed from the object's own path; the
    ObjectManager specification (and GDBus, udisks clients) want them from the
    manager's path, with every property, so emit them ourselves.

    Not before the daemon owns its name (`announcing`): no client can follow
    objects of a unique name it has not seen yet, and at start-up with 10,000
    volumes each signal would cost its properties' marshalling for nobody.
    Clients that come later read GetManagedObjects."""

    announcing = False

    def _emit_interface_added(self, path, interface):
        # Volumes: BusService signals them itself (they are exported on demand).
        if not self.announcing or self._disconnected or not path.startswith(ROOT_PATH + "/") \
                or _is_volume(path):
            return
        props = interface.props() if hasattr(interface, "props") else {}
        self.send(Message.new_signal(ROOT_PATH, OBJECT_MANAGER, "InterfacesAdded",
                                     "oa{sa{sv}}", [path, {interface.name: props}]))

    def _emit_interface_removed(self, path, removed_interfaces):
        if not self.announcing or self._disconnected or not path.startswith(ROOT_PATH + "/") \
                or _is_volume(path):
            return
        self.send(Message.new_signal(ROOT_PATH, OBJECT_MANAGER, "InterfacesRemoved",
                                     "oas", [path, removed_interfaces]))


class BusService:
    """Exports the engine's objects and turns its listener calls into signals."""

    def __init__(self, bus: StoragedBus, engine: Engine):
        self.bus = bus
        self.engine = engine
        self.callers = Callers(bus, engine.settings.polkit_timeout)
        self.manager = ManagerInterface(engine, self.callers)
        self.pools: dict[str, PoolInterface] = {}
        # Every volume by its object path, and those exported so far.
        self.volume_models: dict[str, tuple[Pool, Volume]] = {}
        self.volumes: dict[str, VolumeInterface] = {}
        bus.add_message_handler(remember_call)
        bus.add_message_handler(self._managed_objects)
        bus.add_message_handler(self._export_on_demand)
        bus.export(ROOT_PATH, ObjectManagerInterface())
        bus.export(MANAGER_PATH, self.manager)
        self.jobs: dict[int, JobInterface] = {}
        engine.listener = self
        engine.jobs.listener = self
        # What the engine holds already (the boot starts before the bus layer
        # is imported); no signal, as the name is not owned yet.
        for pool in list(engine.pools.values()):
            self.pool_added(pool)
            for vol in pool.volumes.values():
                self.volume_models[volume_path(pool.uuid, vol.uuid)] = (pool, vol)

    def _managed_objects(self, msg: Message):
        """GetManagedObjects, answered here: dbus-fast's own handler checks
        after each interface whether all are in (O(n^2): 82 ms at 1,000
        volumes); reading every object's properties once is linear."""
        if msg.message_type != MessageType.METHOD_CALL or msg.member != "GetManagedObjects" \
                or msg.interface != OBJECT_MANAGER or msg.path != ROOT_PATH or msg.signature:
            return False
        objects = {MANAGER_PATH: {self.manager.name: self.manager.props()}}
        for uuid, iface in self.pools.items():
            objects[pool_path(uuid)] = {iface.name: iface.props()}
        for path, (_, vol) in self.volume_models.items():
            objects[path] = {VOLUME_IFACE: table_props(VOLUME_PROPERTIES, vol)}
        for job_id, iface in self.jobs.items():
            objects[job_path(job_id)] = {iface.name: iface.props()}
        return Message.new_method_return(msg, "a{oa{sa{sv}}}", [objects])

    def _export_on_demand(self, msg: Message):
        """Export the volume a call is for, or every volume of a pool whose
        node is introspected, then let dbus-fast answer (returns False)."""
        if msg.message_type != MessageType.METHOD_CALL or not msg.path.startswith(POOLS_PREFIX):
            return False
        if _is_volume(msg.path):
            self._export_volume(msg.path)
        elif msg.member == "Introspect":
            below = msg.path.rstrip("/") + "/"
            for path in [p for p in self.volume_models if p.startswith(below) and p not in self.volumes]:
                self._export_volume(path)
        return False

    def _export_volume(self, path: str) -> None:
        if path in self.volumes or path not in self.volume_models:
            return
        pool, vol = self.volume_models[path]
        iface = VolumeInterface(self.engine, self.callers, pool, vol)
        self.volumes[path] = iface
        self.bus.export(path, iface)

    def _signal(self, path: str, interface: str, member: str, signature: str, body: list) -> None:
        if self.bus.announcing and not self.bus._disconnected:
            self.bus.send(Message.new_signal(path, interface, member, signature, body))

    # -------------------------------------------------- Listener

    def pool_added(self, pool: Pool) -> None:
        iface = PoolInterface(self.engine, self.callers, pool)
        self.pools[pool.uuid] = iface
        self.bus.export(pool_path(pool.uuid), iface)
        _emit(self.manager, self.manager.props({"Pools"}))

    def pool_removed(self, pool: Pool) -> None:
        for vol in list(pool.volumes.values()):
            self._unexport_volume(pool, vol)
        iface = self.pools.pop(pool.uuid, None)
        if iface:
            self.bus.unexport(pool_path(pool.uuid), iface)
        _emit(self.manager, self.manager.props({"Pools"}))

    def pool_changed(self, pool: Pool, changed: set[str]) -> None:
        if pool.uuid in self.pools and (props := table_props(POOL_PROPERTIES, pool, changed)):
            # Sent as made: dbus-fast's own emit would read and check every
            # property again (a pool's Volumes holds up to 10,000 paths).
            self._signal(pool_path(pool.uuid), PROPERTIES, "PropertiesChanged", "sa{sv}as",
                         [POOL_IFACE, props, []])

    def volume_added(self, pool: Pool, vol: Volume) -> None:
        path = volume_path(pool.uuid, vol.uuid)
        self.volume_models[path] = (pool, vol)
        self._signal(ROOT_PATH, OBJECT_MANAGER, "InterfacesAdded", "oa{sa{sv}}",
                     [path, {VOLUME_IFACE: table_props(VOLUME_PROPERTIES, vol)}])

    def volume_removed(self, pool: Pool, vol: Volume) -> None:
        self._unexport_volume(pool, vol)

    def volume_changed(self, pool: Pool, vol: Volume, changed: set[str]) -> None:
        path = volume_path(pool.uuid, vol.uuid)
        if path not in self.volume_models:
            return
        self.volume_models[path] = (pool, vol)
        if iface := self.volumes.get(path):
            iface.volume = vol
        if props := table_props(VOLUME_PROPERTIES, vol, changed):
            self._signal(path, PROPERTIES, "PropertiesChanged", "sa{sv}as", [VOLUME_IFACE, props, []])

    def job_added(self, job) -> None:
        iface = JobInterface(self.callers, job)
        self.jobs[job.id] = iface
        self.bus.export(job_path(job.id), iface)

    def job_changed(self, job, changed: set[str]) -> None:
        iface = self.jobs.get(job.id)
        if iface:
            _emit(iface, iface.props(changed))

    def job_completed(self, job, success: bool, message: str) -> None:
        iface = self.jobs.get(job.id)
        if iface:
            iface.Completed(success, message)

    def job_removed(self, job) -> None:
        iface = self.jobs.pop(job.id, None)
        if iface:
            self.bus.unexport(job_path(job.id), iface)

    def _unexport_volume(self, pool: Pool, vol: Volume) -> None:
        path = volume_path(pool.uuid, vol.uuid)
        if self.volume_models.pop(path, None) is None:
            return
        if iface := self.volumes.pop(path, None):
            self.bus.unexport(path, iface)
        self._signal(ROOT_PATH, OBJECT_MANAGER, "InterfacesRemoved", "oas", [path, [VOLUME_IFACE]])


def _emit(iface, props: dict[str, Variant]) -> None:
    if props:
        iface.emit_properties_changed({k: v.value for k, v in props.items()})
