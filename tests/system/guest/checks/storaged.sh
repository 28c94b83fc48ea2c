# storaged's checks, written against the contract in DESIGN.md (bus name
# org.storaged.Storaged1, Manager/Pool/Volume interfaces, the default pool,
# file PVs on loop devices under /var/lib/storaged/images).
#
# What boot 1 records for boot 2 lives in $STATE (the guest's root disk):
#   pool.default pool.multi           pool object paths
#   vg.default vg.multi               their VolumeGroup
#   vol.vol1 vol.vol2                 volume object paths
#   dev.vol1 dev.vol2                 volume Path (/dev/VG/LV)
#   vol1.sha256 vol2.sha256 (+ .pattern)  the 1 MiB written at the start of each volume
#   loop-files                        backing files of storaged's loop devices

IMAGES_DIR=/var/lib/storaged/images
MULTI_POOL_XML="<pool type='lvm'><name>multi</name>\
<physical_volume type='file'><file size='64M'>$IMAGES_DIR/m1.img</file></physical_volume>\
<physical_volume type='file'><file size='64M'>$IMAGES_DIR/m2.img</file></physical_volume>\
<physical_volume type='device'><device>/dev/vdb</device></physical_volume>\
</pool>"
VOLUME_SIZE=67108864    # 64 MiB

# The check fails at once if storaged.service is not installed.
need_unit() {
    systemctl cat storaged.service > /dev/null 2>&1 || fail "storaged.service is not installed"
}

# wait_active SECONDS: storaged.service becomes active; fails at once if it failed.
wait_active() {
    local limit=$1 start=$SECONDS st
    while :; do
        st=$(systemctl is-active storaged.service || true)
        case "$st" in
            active) return 0 ;;
            failed) fail "storaged.service failed: $(journalctl -b -u storaged -n 4 --no-pager -o cat | tr '\n' ' ')" ;;
        esac
        ((SECONDS - start < limit)) || fail "storaged.service is $st after ${limit}s, not active"
        sleep 0.5
    done
}

# ---------------------------------------------------------------- boot 1

storaged_start() {
    need_unit
    local type
    type=$(systemctl show -p Type --value storaged.service)
    [ "$type" = notify ] || fail "storaged.service is Type=$type, not Type=notify"
    timeout 90 systemctl start storaged.service \
        || fail "systemctl start storaged failed: $(journalctl -u storaged -n 5 --no-pager -o cat | tr '\n' ' ')"
    [ "$(systemctl is-active storaged.service)" = active ] \
        || fail "storaged is $(systemctl is-active storaged.service) after start"
}

storaged_unit_verify() {
    local units=(/lib/systemd/system/storaged.service /lib/systemd/system/storaged-network-pools.service)
    local unit out bad
    for unit in "${units[@]}"; do [ -e "$unit" ] || fail "$unit is not installed"; done
    out=$(systemd-analyze verify "${units[@]}" 2>&1) || fail "systemd-analyze verify: $(echo "$out" | tail -3 | tr '\n' ' ')"
    echo "$out"
    # Only what concerns storaged counts; the base system's own units may chat.
    bad=$(echo "$out" | grep -i storaged || true)
    [ -z "$bad" ] || fail "systemd-analyze verify: $(echo "$bad" | head -3 | tr '\n' ' ')"
}

storaged_default_pool() {
    local pool name vg
    pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupPool s default)
    case "$pool" in
        "$SD_ROOT"/pools/?*) ;;
        *) fail "LookupPool default returned '$pool', not a pool object path" ;;
    esac
    name=$(bus_get "$pool" "$IF_POOL" Name)
    [ "$name" = default ] || fail "pool $pool has Name '$name'"
    wait_pool_running "$pool" 60
    vg=$(bus_get "$pool" "$IF_POOL" VolumeGroup)
    vgs "$vg"
    state_set pool.default "$pool"
    state_set vg.default "$vg"
}

# allocate_volume POOLKEY NAME: AllocateVolume(NAME, 64 MiB, {}) on the pool;
# checks the Volume object and its Path; records both.
allocate_volume() {
    local poolkey=$1 name=$2 pool vg vol dev size
    pool=$(state_need "pool.$poolkey")
    vg=$(state_need "vg.$poolkey")
    vol=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' "$name" "$VOLUME_SIZE" 0)
    vol=$(await_object "$vol" "AllocateVolume $name")
    [ -n "$vol" ] || vol=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupVolume ss "$poolkey" "$name")
    case "$vol" in
        "$pool"/volumes/?*) ;;
        *) fail "AllocateVolume returned '$vol', not a Volume under $pool/volumes/" ;;
    esac
    dev=$(bus_get "$vol" "$IF_VOLUME" Path)
    [ "$dev" = "/dev/$vg/$name" ] || fail "Volume Path is '$dev', expected /dev/$vg/$name"
    udevadm settle --timeout=30 || true
    wait_block "$dev" 30
    size=$(blockdev --getsize64 "$dev")
    [ "$size" -ge "$VOLUME_SIZE" ] || fail "$dev has $size bytes, asked for $VOLUME_SIZE"
    lvs "$vg/$name"
    state_set "vol.$name" "$vol"
    state_set "dev.$name" "$dev"
}

# write_and_verify NAME: writes a 1 MiB pattern to the volume and reads it back.
write_and_verify() {
    local name=$1 dev
    dev=$(state_need "dev.$name")
    wait_block "$dev" 10
    write_pattern "$name" "$dev"
    blockdev --flushbufs "$dev"
    verify_pattern "$name" "$dev"
}

storaged_default_volume() { allocate_volume default vol1; }
storaged_default_volume_data() { write_and_verify vol1; }

storaged_create_pool_multi() {
    local pool vg
    echo "$MULTI_POOL_XML"
    pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" CreatePool s "$MULTI_POOL_XML")
    pool=$(await_object "$pool" "CreatePool multi")
    [ -n "$pool" ] || pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupPool s multi)
    case "$pool" in
        "$SD_ROOT"/pools/?*) ;;
        *) fail "CreatePool returned '$pool', not a pool object path" ;;
    esac
    state_set pool.multi "$pool"
    wait_pool_running "$pool" 120
    vg=$(bus_get "$pool" "$IF_POOL" VolumeGroup)
    [ "$vg" = multi ] || fail "VolumeGroup is '$vg'; without <volume_group> it defaults to the pool's name, multi"
    state_set vg.multi "$vg"
}

# The multi pool's VG holds exactly its three PVs: /dev/vdb and the loop
# devices of m1.img and m2.img.
storaged_multi_pvs() {
    local vg pvs f loop
    vg=$(state_need vg.multi)
    pvs -o pv_name,vg_name,pv_size
    pvs=$(pvs --noheadings -o pv_name --select "vg_name=$vg" | tr -d ' ')
    [ "$(echo "$pvs" | grep -c .)" = 3 ] || fail "VG $vg has PVs $(echo "$pvs" | tr '\n' ' '), expected 3"
    echo "$pvs" | grep -qx /dev/vdb || fail "/dev/vdb is not a PV of VG $vg"
    for f in "$IMAGES_DIR/m1.img" "$IMAGES_DIR/m2.img"; do
        [ -f "$f" ] || fail "$f does not exist"
        loop=$(loop_of "$f")
        [ -n "$loop" ] || fail "no loop device is bound to $f"
        echo "$pvs" | grep -qx "$loop" || fail "$loop ($f) is not a PV of VG $vg"
    done
}

storaged_multi_autostart() {
    local pool value
    pool=$(state_need pool.multi)
    bus_call "$pool" "$IF_POOL" SetAutostart b true
    value=$(bus_get "$pool" "$IF_POOL" Autostart)
    [ "$value" = true ] || fail "Autostart is '$value' after SetAutostart(true)"
}

storaged_multi_volume() { allocate_volume multi vol2; }
storaged_multi_volume_data() { write_and_verify vol2; }

# Every file under /var/lib/storaged/images (and, at boot 2, every file that
# had a loop device at boot 1) is attached to exactly one loop device.
storaged_loop_devices() {
    local files f n attached
    losetup --list
    attached=$(loop_backing_files)
    files=$( { ls -1 "$IMAGES_DIR"/*.img 2> /dev/null || true; state_get loop-files; } | sed '/^$/d' | sort -u)
    [ -n "$files" ] || fail "no image files in $IMAGES_DIR"
    echo "$files" | grep -qx "$IMAGES_DIR/m1.img" || fail "$IMAGES_DIR/m1.img is missing"
    echo "$files" | grep -qx "$IMAGES_DIR/m2.img" || fail "$IMAGES_DIR/m2.img is missing"
    while read -r f; do
        n=$(echo "$attached" | grep -cxF "$f" || true)
        [ "$n" = 1 ] || fail "$f is attached to $n loop devices, expected 1"
    done <<< "$files"
    [ "$PHASE" != boot1 ] || state_set loop-files "$files"
}

# D-Bus activation: with the service stopped, a bus call starts it.
storaged_dbus_activation() {
    local version
    need_unit
    systemctl stop storaged.service
    wait_for 30 "storaged to stop" sh -c '! systemctl is-active --quiet storaged.service'
    version=$(bus_get "$SD_MANAGER" "$IF_MANAGER" Version)
    echo "Version: $version"
    wait_active 30
    journalctl -u dbus --no-pager -n 3 -o cat | grep -i 'activat' || true
}

# ---------------------------------------------------------------- boot 2

storaged_active_at_boot() {
    need_unit
    wait_active 30
    [ "$(systemctl is-enabled storaged.service)" = enabled ] || fail "storaged is not enabled"
}

storaged_before_multi_user() {
    local s m
    need_unit
    s=$(systemctl show -p ActiveEnterTimestampMonotonic --value storaged.service)
    m=$(systemctl show -p ActiveEnterTimestampMonotonic --value multi-user.target)
    echo "storaged active at ${s}us, multi-user.target at ${m}us (monotonic)"
    [ "${s:-0}" -gt 0 ] || fail "storaged never became active during this boot"
    [ "${m:-0}" -gt 0 ] || fail "multi-user.target was never reached"
    [ "$s" -le "$m" ] || fail "storaged became active $(((s - m) / 1000)) ms after multi-user.target was reached"
}

storaged_critical_chain() {
    local out
    out=$(systemd-analyze critical-chain storaged.service 2>&1) || fail "systemd-analyze critical-chain: $out"
    echo "$out"
    while IFS= read -r line; do info "critical-chain: $line"; done <<< "$out"
    echo "$out" | grep -q '^storaged\.service' || fail "storaged.service is not in its own critical chain (not started at boot?)"
    # Its own start-up time: the network pools (their servers down at boot 2)
    # are brought up after READY=1, so they must not show here.
    local took
    took=$(echo "$out" | awk '/^storaged\.service/ { for (i = 1; i <= NF; i++) if ($i ~ /^\+/) {
            t = substr($i, 2); ms = (t ~ /ms$/) ? t + 0 : (t ~ /min/) ? 999999 : t * 1000; print int(ms) } }')
    info "storaged.service took ${took:-?} ms to be ready"
    # READY=1 came before any iSCSI or NFS source was brought up.
    local log ready network
    log=$(journalctl -b -u storaged -o cat)
    ready=$(echo "$log" | grep -n ' ready: ' | head -n 1 | cut -d: -f1)
    network=$(echo "$log" | grep -n 'pool(s) on iSCSI, NFS or shared storage' | head -n 1 | cut -d: -f1)
    [ -n "$ready" ] || fail "no 'ready' line in storaged's journal"
    # Where its start-up went: interpreter and imports, commands, the rest;
    # and, to compare, the same LVM work and the same imports run bare here.
    info "storaged: $(echo "$log" | grep ' ready: ' | head -n 1)"
    local vgs t0 t1 t2
    vgs=$(vgs --noheadings -o vg_name | xargs)
    t0=$(date +%s%N)
    lvm config --typeconfig full global/activation > /dev/null
    vgscan > /dev/null 2>&1
    # shellcheck disable=SC2086 # one argument per VG
    vgchange -ay $vgs > /dev/null
    lvm fullreport --reportformat json > /dev/null
    t1=$(date +%s%N)
    python3 -c 'import storaged.daemon'
    t2=$(date +%s%N)
    info "bare here: lvm config + vgscan + vgchange -ay ($vgs) + fullreport $(((t1 - t0) / 1000000)) ms; python3 -c 'import storaged.daemon' $(((t2 - t1) / 1000000)) ms"
    [ -n "$network" ] || fail "storaged did not start its network pools after READY=1"
    [ "$network" -gt "$ready" ] || fail "network pools were brought up before READY=1"
}

# Every autostart pool is running; default and multi are among them.
storaged_autostart_pools_running() {
    local pools pool name auto state bad="" seen=""
    pools=$(bus_get "$SD_MANAGER" "$IF_MANAGER" Pools)
    [ -n "$pools" ] || fail "the Manager's Pools property is empty"
    while read -r pool; do
        name=$(bus_get "$pool" "$IF_POOL" Name)
        auto=$(bus_get "$pool" "$IF_POOL" Autostart)
        state=$(bus_get "$pool" "$IF_POOL" State)
        echo "pool $name ($pool): Autostart=$auto State=$state"
        [ "$auto" = true ] || continue
        seen="$seen $name"
        [ "$state" = running ] || bad="$bad $name=$state($(bus_get "$pool" "$IF_POOL" StateReason))"
    done <<< "$pools"
    [ -z "$bad" ] || fail "autostart pools not running:$bad"
    case " $seen " in *" default "*) ;; *) fail "pool default is not an autostart pool (autostart:$seen)" ;; esac
    case " $seen " in *" multi "*) ;; *) fail "pool multi is not an autostart pool (autostart:$seen)" ;; esac
}

# Every volume of every pool is Active; vol1 and vol2 are among them.
storaged_volumes_active() {
    local pools pool vols vol name active bad="" seen=""
    pools=$(bus_get "$SD_MANAGER" "$IF_MANAGER" Pools)
    while read -r pool; do
        [ -n "$pool" ] || continue
        vols=$(bus_get "$pool" "$IF_POOL" Volumes)
        while read -r vol; do
            [ -n "$vol" ] || continue
            name=$(bus_get "$vol" "$IF_VOLUME" Name)
            active=$(bus_get "$vol" "$IF_VOLUME" Active)
            echo "volume $name ($vol): Active=$active"
            seen="$seen $name"
            [ "$active" = true ] || bad="$bad $name"
        done <<< "$vols"
    done <<< "$pools"
    lvs -o lv_name,vg_name,lv_active,lv_path
    [ -z "$bad" ] || fail "volumes not active:$bad"
    case " $seen " in *" vol1 "*) ;; *) fail "vol1 is not among the pools' Volumes" ;; esac
    case " $seen " in *" vol2 "*) ;; *) fail "vol2 is not among the pools' Volumes" ;; esac
}

# Object paths are keyed by UUID: the same objects after the reboot.
storaged_object_paths_stable() {
    same_object "$SD_MANAGER" "$IF_MANAGER" LookupPool s default -- pool.default
    same_object "$SD_MANAGER" "$IF_MANAGER" LookupPool s multi -- pool.multi
    same_object "$SD_MANAGER" "$IF_MANAGER" LookupVolume ss default vol1 -- vol.vol1
    same_object "$SD_MANAGER" "$IF_MANAGER" LookupVolume ss multi vol2 -- vol.vol2
    local v path want
    v=$(state_need vol.vol2)
    want=$(state_need dev.vol2)
    path=$(bus_get "$v" "$IF_VOLUME" Path)
    [ "$path" = "$want" ] || fail "vol2's Path is $path, was $want at boot 1"
}

# same_object CALL... -- KEY: the call answers the object path recorded as KEY.
same_object() {
    local -a call=()
    while [ "$1" != -- ]; do call+=("$1"); shift; done
    local key=$2 want got
    want=$(state_need "$key")
    got=$(bus_call "${call[@]}")
    [ "$got" = "$want" ] || fail "${call[2]} ${call[*]:4} answers $got, was $want at boot 1"
    echo "${call[2]} ${call[*]:4}: $got, as at boot 1"
}

storaged_vol1_readback() { local dev; dev=$(state_need dev.vol1); wait_block "$dev" 30; verify_pattern vol1 "$dev"; }
storaged_vol2_readback() { local dev; dev=$(state_need dev.vol2); wait_block "$dev" 30; verify_pattern vol2 "$dev"; }

# An admin's lvchange -an/-ay (outside the daemon) reaches the Volume's Active
# property: inotify on /dev/mapper where device-mapper runs. The promise is a
# second on real hardware (bench/detect.py measures it on the host); under
# software emulation every process start costs ~10x, and a busctl read alone
# takes hundreds of milliseconds, so the lab allows 5 s and prints the time.
volume_active_is() { [ "$(bus_get "$1" "$IF_VOLUME" Active)" = "$2" ]; }

within_a_second() {
    local what=$1 start
    shift
    start=$(date +%s%N)
    until "$@" > /dev/null 2>&1; do
        (( ($(date +%s%N) - start) / 1000000 < 5000 )) || fail "$what not seen within 5 s"
        sleep 0.05
    done
    echo "$what seen after $(( ($(date +%s%N) - start) / 1000000 )) ms (emulated guest)"
}

storaged_outside_activation() {
    local vol dev lv
    vol=$(state_need vol.vol2)
    dev=$(state_need dev.vol2)
    lv=${dev#/dev/}
    lvchange -an "$lv" || fail "lvchange -an $lv failed"
    within_a_second "Active=false after lvchange -an" volume_active_is "$vol" false
    lvchange -ay "$lv" || fail "lvchange -ay $lv failed"
    within_a_second "Active=true after lvchange -ay" volume_active_is "$vol" true
    wait_block "$dev" 10
}

# ---------------------------------------------------------------- network PVs
# An iSCSI LUN served by tgt and a file on an NFS export, both on 127.0.0.1.
# The daemon logs in and mounts by itself; nothing here does it for it.
# Recorded: pool.netiscsi pool.netnfs, vg.*, vol.vol3 vol.vol4, dev.*, *.sha256.

NET_IQN=$LAB_IQN_PREFIX:pool
NET_LUN_FILE=/var/lib/storaged-lab/iscsi-pool.img
NET_NFS_DIR=/srv/storaged-lab-pool
NET_BY_PATH=/dev/disk/by-path/ip-$LAB_PORTAL-iscsi-$NET_IQN-lun-1
ISCSI_POOL_XML="<pool type='lvm'><name>netiscsi</name><physical_volume type='iscsi'>\
<host port='3260'>127.0.0.1</host><target>$NET_IQN</target><lun>1</lun></physical_volume></pool>"
NFS_POOL_XML="<pool type='lvm'><name>netnfs</name><physical_volume type='nfs'>\
<server>127.0.0.1</server><export>$NET_NFS_DIR</export><file size='96M'>netnfs.img</file>\
</physical_volume></pool>"

# The servers: tgt's targets live in memory only, so each boot adds it again
# (on the same backing file); the export line stays in /etc/exports.d.
# The servers run on this host, so the shutdown unit must stop the network
# pools before them, as a drop-in tells it (README: the unit's own comment).
NET_DROPIN=/etc/systemd/system/storaged-network-pools.service.d/lab-servers.conf

net_servers_start() {
    if [ ! -e "$NET_DROPIN" ]; then
        mkdir -p "$(dirname "$NET_DROPIN")"
        printf '[Unit]\nAfter=tgt.service nfs-server.service\n' > "$NET_DROPIN"
        systemctl daemon-reload
    fi
    tgt_start
    [ -n "$(tgt_tid_of "$NET_IQN")" ] || tgt_add_lun pool "$NET_LUN_FILE" 128M > /dev/null
    if grep -qs "^$NET_NFS_DIR " "$LAB_EXPORTS"; then
        systemctl start nfs-server.service
        exportfs -ra
    else
        nfs_export_start "$NET_NFS_DIR"
    fi
}

# create_pool NAME XML: CreatePool, then waits for it to run; prints its path.
create_pool() {
    local name=$1 xml=$2 pool
    pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" CreatePool s "$xml")
    pool=$(await_object "$pool" "CreatePool $name")
    [ -n "$pool" ] || pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupPool s "$name")
    wait_pool_running "$pool" 120 >&2
    echo "$pool"
}

# create_net_pool KEY XML: CreatePool, running, autostart; records pool.KEY and vg.KEY.
create_net_pool() {
    local key=$1 xml=$2 pool
    echo "$xml"
    pool=$(create_pool "$key" "$xml")
    state_set "pool.$key" "$pool"
    state_set "vg.$key" "$(bus_get "$pool" "$IF_POOL" VolumeGroup)"
    bus_call "$pool" "$IF_POOL" SetAutostart b true
    pvs -o pv_name,vg_name,pv_size
}

storaged_iscsi_pool() {
    net_servers_start
    create_net_pool netiscsi "$ISCSI_POOL_XML"
    [ -b "$NET_BY_PATH" ] || fail "$NET_BY_PATH is not there: storaged did not log in"
    iscsiadm -m session
    pvs --noheadings -o pv_name --select "vg_name=netiscsi" | tr -d ' ' \
        | grep -qx "$(readlink -f "$NET_BY_PATH")" || fail "the LUN is not a PV of VG netiscsi"
}

# CHAP for real: tgt asks for an account; the credentials come from a
# root-only file named in the XML. A wrong password and a file others may read
# are refused with named errors; the right one logs in; the secret is never in
# the definition, the daemon's state or GetXML.
CHAP_FILE=/etc/storaged/lab-chap.secret
CHAP_SECRET=lab-chap-secret-7f3e

storaged_iscsi_chap() {
    local iqn tid xml out pool
    net_servers_start
    iqn=$(tgt_add_lun chap /var/lib/storaged-lab/iscsi-chap.img 64M)
    tid=$(tgt_tid_of "$iqn")
    tgtadm --lld iscsi --mode account --op new --user labchap --password "$CHAP_SECRET"
    tgtadm --lld iscsi --mode account --op bind --tid "$tid" --user labchap
    xml="<pool type='lvm'><name>netchap</name><physical_volume type='iscsi'>\
<host port='3260'>127.0.0.1</host><target>$iqn</target><lun>1</lun>\
<auth type='chap' file='$CHAP_FILE'/></physical_volume></pool>"
    mkdir -p "$(dirname "$CHAP_FILE")"
    printf 'username=labchap\npassword=not-the-secret\n' > "$CHAP_FILE"
    chmod 600 "$CHAP_FILE"
    out=$(busctl --timeout=120 call "$SD_BUS" "$SD_MANAGER" "$IF_MANAGER" CreatePool s "$xml" 2>&1) \
        && fail "CreatePool with a wrong CHAP password succeeded: $out"
    echo "wrong password: $out"
    [[ "$out" == *"refused the CHAP credentials in $CHAP_FILE"* ]] \
        || fail "the refusal of a wrong CHAP password does not name the credentials: $out"
    printf 'username=labchap\npassword=%s\n' "$CHAP_SECRET" > "$CHAP_FILE"
    chmod 644 "$CHAP_FILE"
    out=$(busctl --timeout=120 call "$SD_BUS" "$SD_MANAGER" "$IF_MANAGER" CreatePool s "$xml" 2>&1) \
        && fail "CreatePool with a world-readable CHAP file succeeded: $out"
    echo "world-readable file: $out"
    [[ "$out" == *"chmod 600"* ]] || fail "the refusal of a world-readable CHAP file does not say what to do: $out"
    chmod 600 "$CHAP_FILE"
    # While the pool starts, an unprivileged user reads every /proc/*/cmdline
    # and /proc/*/environ it can: the secret must never be there. It gets the
    # secret from a file (grep -f), so its own argv does not hold it.
    local spy=/run/storaged-lab-spy seen=/run/storaged-lab-spy/seen
    rm -rf "$spy"; mkdir -m 0777 "$spy"
    printf '%s\n' "$CHAP_SECRET" > "$spy/pattern"; chmod 644 "$spy/pattern"
    setpriv --reuid=65534 --regid=65534 --clear-groups bash -c '
        n=0
        while [ ! -e "$1/stop" ]; do
            for f in /proc/[0-9]*/cmdline /proc/[0-9]*/environ; do
                tr "\0" "\n" < "$f" 2>/dev/null | grep -qF -f "$1/pattern" && echo "$f" >> "$1/leaks"
            done
            n=$((n + 1)); echo "$n" > "$1/scans"
        done' spy "$spy" 2>/dev/null &
    local spy_pid=$!
    pool=$(create_pool netchap "$xml")
    touch "$spy/stop"; wait "$spy_pid" || true
    echo "the unprivileged spy scanned /proc $(cat "$spy/scans" 2>/dev/null || echo 0) times"
    [ -s "$spy/leaks" ] && fail "the CHAP secret was readable in $(sort -u "$spy/leaks" | tr '\n' ' ')"
    [ "$(cat "$spy/scans" 2>/dev/null || echo 0)" -ge 1 ] || fail "the /proc spy never completed a scan"
    # The secret went into open-iscsi's node record, readable by root only.
    local rec
    rec=$(grep -rlF "$CHAP_SECRET" /etc/iscsi/nodes) || fail "no node record holds the CHAP password"
    for f in $rec; do
        [ "$(stat -c %a "$f")" = 600 ] || fail "node record $f is mode $(stat -c %a "$f"), not 600"
    done
    rm -rf "$spy"
    iscsiadm -m session | grep -q "$iqn" || fail "no iSCSI session to $iqn"
    bus_call "$pool" "$IF_POOL" GetXML | grep -q "file=.$CHAP_FILE." || fail "GetXML lost the auth file"
    # (Not the images nor the NFS mount: pool data, gigabytes of it.)
    ! grep -rqs --exclude-dir=images --exclude-dir=nfs "$CHAP_SECRET" \
        /etc/storaged/pools /var/lib/storaged /run/storaged \
        <(bus_call "$pool" "$IF_POOL" GetXML) || fail "the CHAP secret was written where it does not belong"
    bus_call "$pool" "$IF_POOL" Stop
    bus_call "$pool" "$IF_POOL" Delete
    bus_call "$pool" "$IF_POOL" Undefine
    ! iscsiadm -m session 2> /dev/null | grep -q "$iqn" || fail "Stop left the session to $iqn"
    iscsiadm -m node -o delete -T "$iqn" -p "$LAB_PORTAL" || true
    tgt_remove "$iqn"
    tgtadm --lld iscsi --mode account --op delete --user labchap || true
    rm -f "$CHAP_FILE" /var/lib/storaged-lab/iscsi-chap.img
}

storaged_nfs_pool() {
    local mnt
    net_servers_start
    create_net_pool netnfs "$NFS_POOL_XML"
    local pid unit
    pid=$(systemctl show -P MainPID storaged)
    # The hardened unit has a mount namespace of its own; the export is
    # mounted in the host's (by a transient service of systemd's), seen in
    # the daemon's by propagation, and a mount unit systemd stops at shutdown.
    [ "$(readlink /proc/1/ns/mnt)" != "$(readlink "/proc/$pid/ns/mnt")" ] \
        || fail "storaged runs in the host's mount namespace (the unit should give it its own)"
    mnt=$(grep " /run/storaged/nfs/[^ ]* nfs4 " /proc/1/mounts) \
        || fail "no NFS export under /run/storaged/nfs in the host's mount namespace"
    echo "$mnt"
    grep -q " /run/storaged/nfs/[^ ]* nfs4 " "/proc/$pid/mounts" \
        || fail "the export is not seen in storaged's own mount namespace"
    unit=$(systemd-escape --path --suffix=mount "$(echo "$mnt" | cut -d' ' -f2)")
    systemctl is-active --quiet "$unit" || fail "$unit is not active: $(systemctl is-active "$unit")"
    echo "mount unit $unit: $(systemctl show -P After "$unit" | tr ' ' '\n' | grep -E 'network|remote-fs' | tr '\n' ' ')"
    for o in nosuid nodev noexec vers=4.2 hard; do
        echo "$mnt" | grep -q "[ ,]$o[, ]" || fail "the NFS mount lacks $o: $mnt"
    done
    [ -f "$NET_NFS_DIR/netnfs.img" ] || fail "no netnfs.img in the export"
    [ -n "$(loop_of "$(echo "$mnt" | cut -d' ' -f2)/netnfs.img")" ] || fail "netnfs.img is on no loop device"
}

storaged_iscsi_volume() { allocate_volume netiscsi vol3; write_and_verify vol3; }
storaged_nfs_volume() { allocate_volume netnfs vol4; write_and_verify vol4; }

# Stop logs out and unmounts (and leaves the pools autostart for boot 2).
storaged_net_pools_stop() {
    bus_call "$(state_need pool.netiscsi)" "$IF_POOL" Stop
    bus_call "$(state_need pool.netnfs)" "$IF_POOL" Stop
    wait_for 20 "the iSCSI session to end" test ! -e "$NET_BY_PATH"
    local mounts
    for mounts in /proc/1/mounts "/proc/$(systemctl show -P MainPID storaged)/mounts"; do  # the host's, the daemon's
        ! grep -q " /run/storaged/nfs/" "$mounts" || fail "the NFS export is still mounted after Stop ($mounts): $(grep /run/storaged/nfs "$mounts")"
    done
}

# Boot 2: tgt and nfs-server are not started at boot; storaged's pools on
# them are degraded until the check starts them, then the daemon's retry
# brings them back by itself.
storaged_net_pools_back() {
    local pool key state start
    for key in netiscsi netnfs; do
        pool=$(state_need "pool.$key")
        echo "$key before the servers: $(bus_get "$pool" "$IF_POOL" State) ($(bus_get "$pool" "$IF_POOL" StateReason))"
    done
    net_servers_start
    start=$SECONDS
    for key in netiscsi netnfs; do
        pool=$(state_need "pool.$key")
        until [ "$(bus_get "$pool" "$IF_POOL" State)" = running ]; do
            ((SECONDS - start < 75)) || fail "pool $key is $(bus_get "$pool" "$IF_POOL" State) 75 s after its server started: $(bus_get "$pool" "$IF_POOL" StateReason)"
            sleep 1
        done
        echo "$key running $((SECONDS - start)) s after the servers started"
    done
}

# storaged pulled in the shutdown unit, which stops after (so before, at
# shutdown) what the network pools need. run.sh checks the poweroff itself.
storaged_shutdown_unit() {
    local unit=storaged-network-pools.service after
    [ "$(systemctl is-active "$unit")" = active ] || fail "$unit is $(systemctl is-active "$unit"), not active"
    after=$(systemctl show -P After "$unit")
    echo "After=$after"
    for u in storaged.service dbus.service network.target remote-fs.target iscsid.service tgt.service nfs-server.service; do
        [[ " $after " == *" $u "* ]] || fail "$unit is not ordered after $u: After=$after"
    done
}

storaged_vol3_readback() { local dev; dev=$(state_need dev.vol3); wait_block "$dev" 30; verify_pattern vol3 "$dev"; }
storaged_vol4_readback() { local dev; dev=$(state_need dev.vol4); wait_block "$dev" 30; verify_pattern vol4 "$dev"; }

# ---------------------------------------------------------------- least privilege

SECURITY_MAX=3.5   # systemd-analyze security: 3.4 offline for the unit (9.6 before hardening)

storaged_security_score() {
    local out score
    out=$(systemd-analyze security --no-pager storaged.service 2>&1) \
        || fail "systemd-analyze security: $(echo "$out" | tail -2 | tr '\n' ' ')"
    score=$(echo "$out" | sed -n 's/.*Overall exposure level for storaged.service: \([0-9.]*\).*/\1/p')
    [ -n "$score" ] || fail "no exposure level in: $(echo "$out" | tail -2 | tr '\n' ' ')"
    info "systemd-analyze security storaged.service: exposure $score (threshold $SECURITY_MAX)"
    awk -v s="$score" -v m="$SECURITY_MAX" 'BEGIN { exit !(s <= m) }' \
        || fail "exposure level $score is above $SECURITY_MAX"
}

LAB_USER=labuser
POLKIT_RULES=/etc/polkit-1/rules.d/50-storaged-lab.rules

# as_user USER busctl-args...: busctl on the system bus as USER (stdout+stderr).
as_user() {
    local user=$1; shift
    runuser -u "$user" -- busctl --timeout=120 call "$SD_BUS" "$@" 2>&1
}

# A real polkitd: a rules file grants LAB_USER manage-volumes only. The user
# (in the storaged group, so the bus policy lets it send) can allocate a volume
# but not delete a pool; nobody (not in the group) is stopped by the bus policy.
storaged_polkit() {
    local pool out uid
    pool=$(state_need pool.default)
    getent group storaged > /dev/null || fail "the package did not create the storaged group"
    id "$LAB_USER" > /dev/null 2>&1 || useradd --no-create-home --groups storaged "$LAB_USER"
    uid=$(id -u "$LAB_USER")
    mkdir -p "$(dirname "$POLKIT_RULES")"
    cat > "$POLKIT_RULES" <<'RULES'
polkit.addRule(function(action, subject) {
    if (action.id == "org.storaged.Storaged1.manage-volumes" && subject.user == "labuser")
        return polkit.Result.YES;
});
RULES
    # polkitd reads rules when it starts (and on change): make sure it has these.
    systemctl restart polkit.service 2> /dev/null || true
    out=$(as_user "$LAB_USER" "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' labvol 8388608 0) \
        || fail "$LAB_USER could not allocate a volume: $out"
    echo "$out"
    out=$(as_user "$LAB_USER" "$pool" "$IF_POOL" Delete) \
        && fail "$LAB_USER could delete the default pool: $out"
    echo "$out" | grep -qi "not authorized" || fail "Delete as $LAB_USER: '$out', expected NotAuthorized"
    out=$(as_user nobody "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' nobodyvol 8388608 0) \
        && fail "nobody could allocate a volume: $out"
    echo "$out" | grep -qi "access denied" || fail "AllocateVolume as nobody: '$out', expected the bus policy's Access denied"
    journalctl -b -u storaged --no-pager -o verbose STORAGED_METHOD=AllocateVolume \
        STORAGED_CALLER_UID="$uid" | grep -q "STORAGED_ARGS=.*labvol" \
        || fail "no journal entry with STORAGED_CALLER_UID=$uid for AllocateVolume"
    bus_call "$pool" "$IF_POOL" DeallocateVolume s labvol > /dev/null
    rm -f "$POLKIT_RULES"
}
