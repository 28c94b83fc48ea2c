"""docs/api.md stays true to the API: every method, property and signal of the
shipped introspection XML is in it, and its property tables are api.py's."""
import os
import re
from xml.etree import ElementTree

from storaged import api

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(*path: str) -> str:
    with open(os.path.join(REPO, *path)) as f:
        return f.read()


def property_table(table) -> str:
    """The Markdown table docs/api.md holds for an object's properties."""
    rows = ["| property | type | meaning |", "|---|---|---|"]
    for p in table:
        notes = ([" Fixed."] if p.fixed else []) + ([" A storagectl column."] if p.column else [])
        rows.append(f"| `{p.name}` | `{p.signature}` | {p.doc}.{''.join(notes)} |")
    return "\n".join(rows)


def test_every_member_of_the_introspection_xml_is_documented():
    doc = read("docs", "api.md")
    root = ElementTree.fromstring(read("dbus", "org.storaged.Storaged1.xml"))
    members = [(iface.get("name"), el.tag, el.get("name")) for iface in root.iter("interface")
               for el in iface if el.tag in ("method", "property", "signal")]
    assert len(members) > 40
    for iface, tag, name in members:
        short = iface.rsplit(".", 1)[1]
        # Under its interface's heading: `Name(` for a method or signal, `Name` for a property.
        section = doc.split(f"## {short} ", 1)[1].split("\n## ", 1)[0]
        wanted = f"`{name}(" if tag != "property" else f"`{name}`"
        assert wanted in section, (iface, tag, name)


def test_property_tables_are_the_ones_in_api_py():
    doc = read("docs", "api.md")
    for table in (api.MANAGER_PROPERTIES, api.POOL_PROPERTIES, api.VOLUME_PROPERTIES, api.JOB_PROPERTIES):
        assert property_table(table) in doc, "regenerate:\n" + property_table(table)


def test_every_error_kind_is_documented():
    doc = read("docs", "api.md")
    for kind in api.ERROR_KINDS:
        assert re.search(rf"^\| `{kind}` \|", doc, re.M), kind


def test_the_readme_stands_alone():
    readme = read("README.md")
    assert "../shared" not in readme
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert os.path.exists(os.path.join(REPO, link)), link
