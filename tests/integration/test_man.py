"""The man pages build with scdoc (`make man`), render without warnings, and
document every storagectl verb, every storaged option and every storaged.conf
key, each taken from the code itself."""
import ast
import os
import re
import subprocess
import sys

import pytest

from storaged.cli import VERBS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGES = ["storaged.8", "storagectl.1", "storaged.conf.5", "storaged-pool.5"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("man")
    r = subprocess.run(["make", "-s", "-C", ROOT, "man", f"MAN_OUT={out}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    pages = {}
    for page in PAGES:
        r = subprocess.run(["man", "--warnings", "-l", str(out / page)], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8"})
        assert r.returncode == 0 and r.stderr == "", (page, r.stderr)
        assert len(r.stdout.splitlines()) > 20, page
        # Unhyphenate: groff breaks long words at line ends.
        pages[page] = re.sub(r"\u2010\n\s*|-\n\s*", "", r.stdout)
    return pages


def config_keys():
    """Every key settings_from reads: conf.has_option("daemon", KEY)."""
    with open(os.path.join(ROOT, "storaged", "daemon.py")) as f:
        tree = ast.parse(f.read())
    return {node.args[1].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "has_option"}


def test_every_storagectl_verb_is_documented(rendered):
    text = rendered["storagectl.1"]
    missing = [verb for verb in VERBS if not re.search(rf"^\s+{re.escape(verb)}\b", text, re.M)]
    assert VERBS and missing == []
    assert "STORAGED_BUS" in text


def test_every_storaged_option_is_documented(rendered):
    r = subprocess.run([sys.executable, "-m", "storaged.daemon", "--help"], capture_output=True,
                       text=True, timeout=60, cwd=ROOT)
    options = set(re.findall(r"(--[a-z][a-z-]+)", r.stdout)) - {"--help"}
    assert r.returncode == 0 and len(options) >= 8, r.stdout
    assert sorted(o for o in options if o not in rendered["storaged.8"]) == []


def test_every_config_key_is_documented(rendered):
    keys = config_keys()
    assert {"default_pool_size", "libvirt_config_dir"} <= keys
    assert sorted(k for k in keys if not re.search(rf"^\s+{k} = ", rendered["storaged.conf.5"], re.M)) == []
    with open(os.path.join(ROOT, "debian", "conf", "storaged.conf")) as f:
        shipped = f.read()
    assert sorted(k for k in keys if f"#{k} = " not in shipped) == []


def test_pool_format_page_names_every_physical_volume_type(rendered):
    text = rendered["storaged-pool.5"]
    for kind in ("file", "device", "iscsi", "nfs"):
        assert f"<physical_volume type='{kind}'>" in text, kind
    assert "autostart='no'" in text or "autostart='yes|no'" in text
