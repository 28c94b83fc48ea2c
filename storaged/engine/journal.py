"""Each pool's record on disk (<state_dir>/pools/UUID.json): the multi-step
operation under way (its intent, written before storage is touched), what the
pool created (so Delete removes only that), whether it created its VG, and
whether it was started in this boot."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..model.definitions import FileSource, Source, parse_source, source_element, to_string
from ..model.state import Pool
from ..system.host import boot_id

CREATE, BUILD, DELETE, ADD_PV, REMOVE_PV = "create", "build", "delete", "add_pv", "remove_pv"
# Volume operations; finished after the pool is started (engine/snapshots.py, clone.py).
CLONE, REVERT = "clone", "revert"


@dataclass(frozen=True)
class Intent:
    """An operation that a crash may interrupt; the next start finishes or
    undoes it (engine/recovery.py)."""

    op: str  # CREATE, BUILD, DELETE, ADD_PV, REMOVE_PV, CLONE or REVERT
    source: str = ""  # ADD_PV: the <physical_volume> being added; REVERT: the origin
    key: str = ""  # REMOVE_PV: the source's key; CLONE: the new volume; REVERT: the snapshot
    fresh: bool = False  # BUILD: the pool had nothing built yet, so all of it may be undone


@dataclass
class Record:
    """A pool's record, as read from and written to its JSON file."""

    intent: Intent | None = None
    # Sources whose create() made something (a file), as <physical_volume>
    # XML by key: only these does Delete (or an undo) destroy.
    created: dict[str, str] = field(default_factory=dict)
    vg_created: bool = False
    started_in_boot: str = ""  # the boot id when a pool with nothing to attach was started

    @classmethod
    def from_json(cls, data: dict) -> "Record":
        intent = data.get("intent")
        created = dict(data.get("created", {}))
        # Records written before sources of every type were kept: file paths.
        for path in data.get("created_files", []):
            created.setdefault(path, to_string(source_element(FileSource(path=path))))
        return cls(intent=Intent(**intent) if intent else None, created=created,
                   vg_created=bool(data.get("vg_created")),
                   started_in_boot=data.get("started_in_boot", ""))

    def to_json(self) -> dict:
        data: dict = {"created": self.created}
        if self.intent:
            data["intent"] = {k: v for k, v in vars(self.intent).items() if v}
        if self.vg_created:
            data["vg_created"] = True
        if self.started_in_boot:
            data["started_in_boot"] = self.started_in_boot
        return data

    def empty(self) -> bool:
        return not (self.intent or self.created or self.vg_created or self.started_in_boot)

    def created_sources(self) -> list[Source]:
        return [parse_source(xml) for xml in self.created.values()]


class Journal:
    """Part of the Engine (see engine/__init__.py): reading and writing records."""

    def _record(self, uuid: str) -> Record:
        return Record.from_json(self.store.record(uuid))

    def _save_record(self, uuid: str, record: Record) -> None:
        """Atomically; a record with nothing left to say is removed."""
        if record.empty():
            self.store.remove_record(uuid)
        else:
            self.store.save_record(uuid, record.to_json())

    def _set_intent(self, uuid: str, intent: Intent | None) -> None:
        """Record (or clear) a multi-step operation, before it touches storage."""
        record = self._record(uuid)
        if record.intent != intent:
            record.intent = intent
            self._save_record(uuid, record)

    def _note_created(self, pool: Pool, src: Source, made: bool) -> None:
        """Remember (or forget) that this pool made `src`'s file."""
        record = self._record(pool.uuid)
        if made:
            record.created[src.key] = to_string(source_element(src))
        else:
            record.created.pop(src.key, None)
        self._save_record(pool.uuid, record)

    def _made(self, pool: Pool, src: Source) -> bool:
        return src.key in self._record(pool.uuid).created

    def _mark_started(self, pool: Pool, started: bool) -> None:
        """For a pool with nothing to attach (device PVs, an adopted VG) only a
        record tells whether it was started; Boot._left_running reads it."""
        if any(self._backend(s).attaches for s in pool.definition.sources):
            return
        record = self._record(pool.uuid)
        now = boot_id() if started else ""
        if record.started_in_boot != now:
            record.started_in_boot = now
            self._save_record(pool.uuid, record)

    async def _destroy_if_created(self, pool: Pool, src: Source) -> None:
        """Remove a PV's file (local or on NFS) if this pool made it, and forget it."""
        if self._made(pool, src):
            await self._backend(src).destroy(src)
            self._note_created(pool, src, False)
