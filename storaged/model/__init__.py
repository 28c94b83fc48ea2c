"""Pool and volume definitions: dataclasses, XML parsing and serialisation."""
