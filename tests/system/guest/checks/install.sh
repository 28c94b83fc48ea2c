# Installing storaged in the guest the way a user would (boot 1). The guest
# has no network: pip finds its wheels in the 9p share only.

SRC_DIR=/root/storaged

install_dbus_fast() {
    ls "$LAB"/wheels/
    python3 -m pip install --break-system-packages --no-index --find-links "$LAB/wheels" dbus-fast
    python3 -c 'import dbus_fast, sys; print("dbus-fast", getattr(dbus_fast, "__version__", "?"), "from", dbus_fast.__file__)'
}

# The working tree of the checkout under test, as the host snapshotted it.
install_source() {
    rm -rf "$SRC_DIR"
    mkdir -p "$SRC_DIR"
    tar -xf "$LAB/src.tar" -C "$SRC_DIR"
    echo "$(find "$SRC_DIR" -type f | wc -l) files in $SRC_DIR"
    [ -f "$SRC_DIR/Makefile" ] || fail "no Makefile in the source tree"
}

install_make_install() {
    [ -f "$SRC_DIR/Makefile" ] || fail "no source tree in $SRC_DIR (install.source failed)"
    # COCKPIT=no: building the Cockpit page needs npm and a network the guest has not.
    make -C "$SRC_DIR" install PYTHON=/usr/bin/python3 COCKPIT=no
    local f
    local f found
    for f in /usr/local/bin/storaged /usr/local/bin/storagectl /lib/systemd/system/storaged.service \
             /usr/share/dbus-1/system.d/org.storaged.Storaged1.conf \
             /usr/share/dbus-1/system-services/org.storaged.Storaged1.service \
             /usr/share/polkit-1/actions/org.storaged.Storaged1.policy; do
        if [ ! -e "$f" ]; then
            found=$(find / -xdev -path /proc -prune -o -path "*/bin/$(basename "$f")" -print 2> /dev/null | grep -v '^/root/' | head -3 | tr '\n' ' ')
            fail "make install did not install $f${found:+ (found instead: $found)}"
        fi
    done
    python3 -c 'import storaged; print("import storaged:", storaged.__file__)' \
        || fail "python3 cannot import the installed storaged package"
    timeout 30 /usr/local/bin/storaged --help > /dev/null || fail "/usr/local/bin/storaged --help failed"
}

install_enable() {
    [ -e /lib/systemd/system/storaged.service ] || fail "storaged.service is not installed"
    systemctl daemon-reload
    systemctl enable storaged
    # The bus policy and activation file are new: have dbus-daemon read them.
    systemctl reload dbus.service
    [ "$(systemctl is-enabled storaged)" = enabled ] || fail "storaged is $(systemctl is-enabled storaged), not enabled"
}
