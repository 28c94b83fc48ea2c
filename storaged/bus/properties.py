"""D-Bus properties made from the tables in storaged/api.py: one read-only
getter per row, so that no property is declared twice."""
from dbus_fast import Variant
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property


def exports(table):
    """Class decorator: a read-only D-Bus property for each row of `table`,
    each read from the interface's model()."""
    def decorate(cls):
        cls.TABLE = table
        cls.BY_NAME = {prop.name: prop for prop in table}
        for prop in table:
            getter = _getter(prop)
            setattr(cls, getter.prop_getter.__name__, getter)
        return cls
    return decorate


def _getter(prop):
    def get(self):
        return prop.read(self.model())
    # dbus-fast finds the getter again by this name (and a Job's Completed
    # property must not take the name of its Completed signal).
    get.__name__ = f"_property_{prop.name}"
    # dbus-fast reads the D-Bus type from the return annotation.
    get.__annotations__ = {"return": prop.signature}
    return dbus_property(access=PropertyAccess.READ, name=prop.name)(get)


class ModelInterface(ServiceInterface):
    """An interface whose properties are the rows of a table (see exports),
    read from the engine object that model() returns."""

    TABLE: tuple = ()
    BY_NAME: dict = {}

    def model(self):
        raise NotImplementedError

    def props(self, names=None) -> dict[str, Variant]:
        """Every property (for InterfacesAdded), or the named ones (for PropertiesChanged)."""
        return table_props(self.TABLE, self.model(), names)


def table_props(table, obj, names=None) -> dict[str, Variant]:
    """The properties of `table` read from `obj`: all, or the named ones.
    Lists of object paths are not checked path by path: storaged's own path
    functions (api.py) make them, and a pool's holds 10,000 at times."""
    rows = table if names is None else [p for p in table if p.name in names]
    return {p.name: Variant(p.signature, p.read(obj), verify=p.signature != "ao") for p in rows}
