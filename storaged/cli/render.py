"""How storagectl shows things: values, tables, an object's details, and events."""
from __future__ import annotations

from ..api import JOB_IFACE, MANAGER_PATH, PROPERTIES
from ..client.objects import snake, words
from ..model.sizes import human_size


def label(name: str) -> str:
    """'StateReason' -> 'State reason'; 'StartedByUID' -> 'Started by UID'."""
    first, *rest = words(name)
    return " ".join([first] + [w if w.isupper() else w.lower() for w in rest])


def one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def job_number(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def columns(iface: str) -> list[str]:
    """A listing's columns: the properties api.py marks as columns, in its order."""
    return [p.name for p in PROPERTIES[iface] if p.column]


SIGNATURES = {(iface, p.name): p.signature for iface, table in PROPERTIES.items() for p in table}


def signature(iface: str, name: str, value) -> str:
    """A property's D-Bus type from api.py; one a newer storaged has, from its value."""
    if (iface, name) in SIGNATURES:
        return SIGNATURES[iface, name]
    return {bool: "b", int: "t", float: "d", list: "as"}.get(type(value), "s")


def plain(sig: str, value, names: dict[str, str]):
    """A property's value for JSON: object paths become the names they stand for."""
    if sig == "o":
        return names.get(value, value)
    if sig == "ao":
        return sorted(names.get(p, p) for p in value)
    return value


def human(sig: str, value, names: dict[str, str]) -> str:
    if sig == "o" and value == "/":  # D-Bus's "no object" (a volume's Origin)
        return "-"
    value = plain(sig, value, names)
    if sig == "t":  # every 't' in the API is a size in bytes
        return human_size(value)
    if sig == "b":
        return "yes" if value else "no"
    if sig == "d":
        return f"{value:.0%}"
    if isinstance(value, list):
        return ", ".join(value) or "-"
    return str(value) or "-"


# The order people read an object in; properties not named here come last.
ORDER = ["Name", "UUID", "State", "StateReason", "Pool", "Path", "VolumeGroup", "Autostart",
         "Capacity", "Allocation", "Available", "Active", "PhysicalVolumes", "Volumes"]


def ordered(props: dict) -> list[tuple[str, object]]:
    return sorted(props.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER))


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers] + rows) for i in range(len(headers))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), "-" * (sum(widths) + 2 * (len(widths) - 1))]
    return "\n".join(line.rstrip() for line in lines + [fmt.format(*r) for r in rows])


class Objects:
    """What GetManagedObjects returned (plain values), with names for the object paths."""

    def __init__(self, tree: dict):
        self.tree = tree
        self.names: dict[str, str] = {MANAGER_PATH: ""}
        for path, ifaces in tree.items():
            for iface, props in ifaces.items():
                self.learn(path, iface, props)

    def learn(self, path: str, iface: str, props: dict) -> None:
        if "Name" in props:
            self.names[path] = props["Name"]
        elif iface == JOB_IFACE:
            self.names[path] = job_number(path)

    def of(self, iface: str, pool: str | None = None) -> list[tuple[str, dict]]:
        found = [(path, ifaces[iface]) for path, ifaces in self.tree.items() if iface in ifaces
                 and (pool is None or ifaces[iface]["Pool"] == pool)]
        return sorted(found, key=lambda item: self.names.get(item[0], item[0]))

    def human(self, iface: str, name: str, value) -> str:
        return human(signature(iface, name, value), value, self.names)

    def values(self, iface: str, props: dict) -> dict:
        return {snake(k): plain(signature(iface, k, v), v, self.names) for k, v in ordered(props)}

    def record(self, path: str, iface: str, props: dict) -> dict:
        return {"object": path, **self.values(iface, props)}

    def title(self, path: str) -> str:
        """'pool', 'pool/volume' or a job's number."""
        if "/volumes/" in path:
            pool = path.split("/volumes/")[0]
            return f"{self.names.get(pool, '?')}/{self.names.get(path, '?')}"
        return self.names.get(path, job_number(path))

    def listing(self, session, iface: str, items: list[tuple[str, dict]], first: str) -> None:
        if session.args.names:
            for path, _ in items:
                print(self.names[path])
            return
        cols = columns(iface)
        rows = [[self.names[path]] + [self.human(iface, c, props[c]) if c in props else "-" for c in cols]
                for path, props in items]
        session.show([self.record(path, iface, props) for path, props in items],
                     table([first] + [label(c) for c in cols], rows))

    def info(self, session, path: str, iface: str) -> None:
        props = self.tree[path][iface]
        shown = {label(k): self.human(iface, k, v) for k, v in ordered(props) if v != ""}
        width = max(len(k) for k in shown) + 2
        session.show(self.record(path, iface, props),
                     "\n".join(f"{k + ':':<{width}}{v}" for k, v in shown.items()))

    def event(self, ev) -> dict | None:
        """One storaged.client Event as an event record; `line` is its human form."""
        if ev.kind == "storaged":
            return {"event": ev.type, "kind": "storaged", "name": "", "object": "",
                    "properties": {}, "line": ""}
        if ev.type == "added":
            self.learn(ev.path, ev.interface, ev.properties)
            return self._event(ev, detail=False)
        if ev.type == "removed":
            event = self._event(ev)
            self.names.pop(ev.path, None)
            return event
        if ev.type == "changed":
            event = self._event(ev)
            self.learn(ev.path, ev.interface, ev.properties)  # after: a rename shows under the old name
            return event
        if ev.type in ("completed", "failed"):
            event = self._event(ev)
            event["properties"] = {"success": ev.type == "completed", "message": ev.message}
            event["line"] = f": {one_line(ev.message)}" if ev.message else ""
            return event
        return None

    def _event(self, ev, detail: bool = True) -> dict:
        props = ev.properties if ev.type != "completed" and ev.type != "failed" else {}
        changes = ", ".join(f"{k}={self.human(ev.interface, k, v)}" for k, v in props.items())
        return {"event": ev.type, "kind": ev.kind, "name": self.title(ev.path),
                "object": ev.path, "properties": self.values(ev.interface, props),
                "line": f": {changes}" if detail and changes else ""}
