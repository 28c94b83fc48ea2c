"""The start after a crash: finish or undo what an interrupted operation left."""
from __future__ import annotations

import logging

from ..errors import Busy, StoragedError
from ..model.definitions import parse_source
from .journal import ADD_PV, BUILD, CLONE, CREATE, DELETE, REMOVE_PV, REVERT, Record

log = logging.getLogger(__name__)


class Recovery:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    async def _recover(self) -> None:
        """The start after a crash: finish or undo what was under way."""
        for uuid, data in self.store.records():
            record = Record.from_json(data)
            intent = record.intent
            if not intent or intent.op in (CLONE, REVERT):
                continue  # finished once the pool is up: _recover_volumes
            pool = self.pools.get(uuid)
            log.warning("recovering from an interrupted %s of pool %s", intent.op,
                        pool.name if pool else uuid)
            try:
                if intent.op == CREATE:
                    # Roll back: as if CreatePool had never been called.
                    if pool:
                        await self._delete_storage(pool, remove_vg=record.vg_created)
                        self._forget(pool)
                    else:
                        for src in record.created_sources():
                            await self._backend(src).destroy(src)
                    self.store.remove_record(uuid)
                elif intent.op == BUILD and pool and intent.fresh:
                    # Roll back to defined-not-built; a Build on a pool built
                    # before is not undone (its steps are each safe to repeat).
                    await self._delete_storage(pool, remove_vg=record.vg_created)
                    record = self._record(uuid)
                    record.intent, record.created, record.vg_created = None, {}, False
                    self._save_record(uuid, record)
                elif intent.op == DELETE and pool:
                    try:
                        await self._delete_storage(pool)  # roll forward
                    except Busy as exc:  # it holds what storaged did not make
                        log.error("not deleting pool %s: %s", pool.name, exc.message)
                        self._set_intent(uuid, None)
                        continue
                    self.store.remove_record(uuid)
                    self._deleted(pool)
                elif intent.op == ADD_PV and pool:
                    await self._undo_add_pv(pool, parse_source(intent.source))
                elif intent.op == REMOVE_PV and pool:
                    await self._finish_remove_pv(pool, intent.key)
                else:
                    self._set_intent(uuid, None)
            except StoragedError as exc:
                log.error("recovery of %s failed: %s; it is retried at the next start",
                          pool.name if pool else uuid, exc.message)

    async def _recover_volumes(self) -> None:
        """After the pools started: a clone a crash interrupted is removed (a
        half-copied volume is worth nothing), a merge is finished."""
        for uuid, data in self.store.records():
            intent = Record.from_json(data).intent
            pool = self.pools.get(uuid)
            if not intent or intent.op not in (CLONE, REVERT) or pool is None or not pool.active:
                continue
            log.warning("recovering from an interrupted %s of %s in pool %s", intent.op,
                        intent.key, pool.name)
            try:
                if intent.op == CLONE:
                    await self._remove_clone(pool, intent.key)
                else:
                    await self._finish_revert(pool, intent)
            except StoragedError as exc:
                log.error("recovery of %s in pool %s failed: %s; it is retried at the next start",
                          intent.key, pool.name, exc.message)
