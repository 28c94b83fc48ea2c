"""`make install` puts everything where a distribution would, under DESTDIR."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_make_install_destdir(tmp_path):
    dest = tmp_path / "dest"
    r = subprocess.run(["make", "-C", ROOT, "install", f"DESTDIR={dest}", "PREFIX=/usr/local",
                        f"PYTHON={sys.executable}"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    unit = (dest / "lib/systemd/system/storaged.service").read_text()
    assert "ExecStart=/usr/local/bin/storaged --bus system" in unit
    assert "Type=notify" in unit and "BusName=org.storaged.Storaged1" in unit
    assert "Wants=storaged-network-pools.service" in unit
    shutdown = (dest / "lib/systemd/system/storaged-network-pools.service").read_text()
    assert "ExecStop=/usr/local/bin/storagectl --bus system pool-stop --network" in shutdown
    assert "@BINDIR@" not in unit + shutdown
    assert (dest / "usr/share/dbus-1/system.d/org.storaged.Storaged1.conf").exists()
    activation = (dest / "usr/share/dbus-1/system-services/org.storaged.Storaged1.service").read_text()
    assert "SystemdService=storaged.service" in activation
    assert (dest / "usr/share/polkit-1/actions/org.storaged.Storaged1.policy").exists()
    assert (dest / "usr/local/bin/storaged").exists()
    # The Cockpit page with the PatternFly it uses: nothing is fetched at run time.
    page = dest / "usr/share/cockpit/storaged"
    assert '"Storage pools"' in (page / "manifest.json").read_text()
    assert ".pf-c-card" in (page / "patternfly.css").read_text()
    assert list(page.glob("assets/fonts/**/*.woff2")) and (page / "index.js").exists()
    schemas = list(dest.glob("usr/local/lib/python3*/*-packages/storaged/model/schemas/pool.rng"))
    assert schemas, "the RelaxNG schema must be installed with the package"
    for page in ("man8/storaged.8", "man1/storagectl.1", "man5/storaged.conf.5", "man5/storaged-pool.5"):
        text = (dest / "usr/local/share/man" / page).read_text()
        assert text.startswith(".") and ".SH NAME" in text, page
    assert (dest / "usr/share/bash-completion/completions/storagectl").exists()
    assert (dest / "usr/lib/sysusers.d/storaged.conf").exists()
