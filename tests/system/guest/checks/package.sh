# storaged from its Debian package (boot 1: install, upgrade; boot 2: remove,
# purge, reinstall). The host builds two .debs into the share's debs/: the
# previous build (version ~lab1) and the one under test. The guest has no
# network: every dependency is in the image (image/packages.txt).

deb_of() { ls "$LAB"/debs/storaged_"$1"_all.deb 2> /dev/null | head -1; }
installed_version() { dpkg-query -W -f '${Status} ${Version}' storaged 2> /dev/null || true; }
# No --no-download: apt then hands dpkg a relative path for a local .deb and fails.
apt_local() { DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"; }

package_install_previous() {
    local deb
    deb=$(ls "$LAB"/debs/storaged_*~lab1_all.deb | head -1)
    [ -n "$deb" ] || fail "no previous (~lab1) .deb in the share"
    apt_local "$deb"
    echo "installed: $(installed_version)"
    case "$(installed_version)" in "install ok installed "*~lab1) ;; *) fail "dpkg says '$(installed_version)'" ;; esac
    getent group storaged > /dev/null || fail "the storaged group was not created (sysusers)"
    local f
    for f in /usr/bin/storaged /usr/bin/storagectl /lib/systemd/system/storaged.service \
             /lib/systemd/system/storaged-network-pools.service /usr/lib/sysusers.d/storaged.conf \
             /usr/share/dbus-1/system.d/org.storaged.Storaged1.conf \
             /usr/share/dbus-1/system-services/org.storaged.Storaged1.service \
             /usr/share/polkit-1/actions/org.storaged.Storaged1.policy \
             /usr/share/bash-completion/completions/storagectl /etc/storaged/storaged.conf \
             /usr/share/man/man8/storaged.8.gz /usr/share/man/man1/storagectl.1.gz \
             /usr/share/man/man5/storaged.conf.5.gz /usr/share/man/man5/storaged-pool.5.gz; do
        [ -e "$f" ] || fail "the package did not install $f"
    done
    python3 -c 'import dbus_fast, storaged; print("dbus-fast", dbus_fast.__file__, "storaged", storaged.__file__)'
    local page warnings
    for page in storaged.8 storagectl.1 storaged.conf.5 storaged-pool.5; do
        warnings=$(MANWIDTH=80 man --warnings "${page##*.}" "${page%.*}" 2>&1 >/dev/null | head -3)
        man -w "${page##*.}" "${page%.*}" > /dev/null || fail "man cannot find $page"
        [ -z "$warnings" ] || fail "man $page warns: $warnings"
    done
    [ "$(systemctl is-enabled storaged)" = enabled ] || fail "storaged.service is $(systemctl is-enabled storaged) after install"
    [ "$(systemctl is-active storaged)" = active ] || fail "storaged.service is $(systemctl is-active storaged) after install"
    systemctl reload dbus.service  # the policy is read at once anyway; be sure
}

# Upgrade to the build under test with pools in use: the daemon restarts, the
# pool and the volume's data stay.
package_upgrade() {
    local deb pid_before pid_after pool
    deb=$(ls "$LAB"/debs/storaged_*_all.deb | grep -v '~lab1' | head -1)
    [ -n "$deb" ] || fail "no .deb under test in the share"
    pid_before=$(systemctl show -p MainPID --value storaged)
    apt_local "$deb"
    echo "installed: $(installed_version)"
    case "$(installed_version)" in "install ok installed "*~lab1|"") fail "still '$(installed_version)'" ;; esac
    pid_after=$(systemctl show -p MainPID --value storaged)
    [ "$pid_after" != "$pid_before" ] && [ "$pid_after" != 0 ] \
        || fail "storaged was not restarted by the upgrade (MainPID $pid_before -> $pid_after)"
    pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupPool s default)
    wait_pool_running "$pool" 60
    verify_pattern vol1 "$(state_need dev.vol1)"
}

# apt remove: the daemon goes, the pools, their volumes and data and the
# configuration stay (status rc: config files).
package_remove() {
    DEBIAN_FRONTEND=noninteractive apt-get remove -y storaged
    case "$(installed_version)" in "deinstall ok config-files "*) ;; *) fail "dpkg says '$(installed_version)' after remove" ;; esac
    [ ! -e /usr/bin/storaged ] || fail "/usr/bin/storaged is still there"
    pgrep -x storaged > /dev/null && fail "a storaged process is still running"
    [ -e /etc/storaged/storaged.conf ] || fail "remove took /etc/storaged/storaged.conf"
    package_storage_untouched
}

# apt purge: the configuration file goes; pool definitions, state and data stay.
package_purge() {
    DEBIAN_FRONTEND=noninteractive apt-get purge -y storaged
    [ -z "$(installed_version)" ] || dpkg-query -W storaged 2>&1 | grep -qv "ok installed" \
        || fail "dpkg still has storaged after purge: $(installed_version)"
    [ ! -e /etc/storaged/storaged.conf ] || fail "purge left /etc/storaged/storaged.conf"
    package_storage_untouched
}

package_storage_untouched() {
    local vg
    ls /etc/storaged/pools/default.xml /etc/storaged/pools/multi.xml /var/lib/storaged/pools/*.json \
        || fail "pool definitions or records are gone"
    [ -e /var/lib/storaged/images/default.img ] || fail "the default pool's image file is gone"
    for vg in "$(state_need vg.default)" "$(state_need vg.multi)"; do
        vgs "$vg" > /dev/null || fail "volume group $vg is gone"
    done
    verify_pattern vol1 "$(state_need dev.vol1)"
    verify_pattern vol2 "$(state_need dev.vol2)"
}

# Installed again over the kept pools: every autostart pool runs, nothing lost;
# the network pools' shutdown unit is back for the poweroff.
package_reinstall() {
    apt_local "$(ls "$LAB"/debs/storaged_*_all.deb | grep -v '~lab1' | head -1)"
    [ "$(systemctl is-active storaged)" = active ] || fail "storaged is not active after reinstall"
    [ -e /etc/storaged/storaged.conf ] || fail "reinstall did not bring storaged.conf back"
    wait_pool_running "$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupPool s multi)" 120
    verify_pattern vol2 "$(state_need dev.vol2)"
    systemctl start storaged-network-pools.service
}
