# The shared stage: two guests (host A, host B: $LAB_HOST) booted at once on
# one shared raw disk, lvmlockd + sanlock; a shared pool made on A and
# imported on B (issue 15). Checks with the same NAME run on both hosts at the
# same time and meet at barriers: files under $SYNC (the 9p share), written
# with sync_put and waited for with peer_wait. Clocks differ between the
# guests: a duration is only ever measured on one host.
#
# Pair 1 (shared-a, shared-b): setup, the lab itself with plain LVM, checks
# 1-7; A's plan ends holding a volume exclusively, the host kills A's QEMU
# (SIGKILL), B takes the volume over and powers off with the pool running.
# Pair 2 (shared-a2, shared-b2): A back after its crash (degraded while its
# old lease runs out, then running), B rebooted (running, a volume activates).

SHARED_DEV=/dev/disk/by-id/virtio-shared0   # serial=shared0 on QEMU's command line
SHARED_POOL=shared1
SHARED_XML="<pool type='lvm'><name>$SHARED_POOL</name><locking type='sanlock'/>\
<physical_volume type='device'><device>$SHARED_DEV</device></physical_volume></pool>"
SHARED_DISK_BYTES=2147483648                # run.sh: SHARED_DISK_SIZE=2G
SMALL=4194304                               # 4 MiB: one extent
LAB_VG=labshared                            # the plain-LVM check's VG (removed again)
# The agent keeps fd 7 open (the second serial port): LVM would warn at every command.
export LVM_SUPPRESS_FD_WARNINGS=1

peer() { if [ "$LAB_HOST" = a ]; then echo b; else echo a; fi; }
on_a() { [ "$LAB_HOST" = a ]; }

# now_ms: this host's clock in milliseconds (bash's own, no process started).
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# sync_put NAME [VALUE]: the barrier file $SYNC/NAME, written whole (rename).
sync_put() {
    printf '%s\n' "${2:-}" > "$SYNC/.$1.$LAB_HOST.tmp"
    mv -f "$SYNC/.$1.$LAB_HOST.tmp" "$SYNC/$1"
    echo "sync: put $1${2:+ = $2}"
}

# peer_wait NAME SECONDS: waits (50 ms polls) for the other host's barrier
# $SYNC/NAME and prints its value. Fails at once when the other host is gone
# (its QEMU ended: run.sh wrote $SYNC/HOST-gone) or has ended the check of
# the same name without writing NAME (lib.sh's check writes HOST.CHECK.end).
peer_wait() {
    local name=$1 limit=$2 p start=$SECONDS
    p=$(peer)
    while [ ! -e "$SYNC/$name" ]; do
        if [ -e "$SYNC/$p-gone" ]; then
            fail "waiting for '$name' from host $p: its QEMU is gone ($(cat "$SYNC/$p-gone"))"
        fi
        if [ -e "$SYNC/$p.$LAB_CHECK.end" ] && [ ! -e "$SYNC/$name" ]; then
            fail "waiting for '$name': host $p ended $LAB_CHECK (status $(cat "$SYNC/$p.$LAB_CHECK.end")) without it"
        fi
        ((SECONDS - start < limit)) || fail "timed out after ${limit}s waiting for '$name' from host $p"
        sleep 0.05
    done
    echo "sync: got $name after $((SECONDS - start))s" >&2
    cat "$SYNC/$name"
}

# meet NAME SECONDS: both hosts reach this point before either goes on.
meet() {
    sync_put "$LAB_HOST.$1"
    peer_wait "$(peer).$1" "$2" > /dev/null
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / (b > 0 ? b : 1) }'; }

# sd_try PATH IFACE METHOD SIG JSON_ARGS: a call whose D-Bus error name matters
# (sdbus.py: status 3, the name then the message).
sd_try() { python3 "$GUEST/sdbus.py" call "$@"; }

shared_pool_path() { state_need pool.shared; }
# For run.sh: the pool runs on this host, so its poweroff must stop it.
pool_up() { : > "$RESULTS/$PHASE.pool-up"; }
shared_vg() { state_need vg.shared; }
vol_of() { bus_call "$SD_MANAGER" "$IF_MANAGER" LookupVolume ss "$SHARED_POOL" "$1"; }
vol_lock() { bus_get "$1" "$IF_VOLUME" Lock; }

# expect_lock VOLUME_PATH LOCK ACTIVE: the Volume's Lock and Active properties.
expect_lock() {
    local lock active
    lock=$(vol_lock "$1"); active=$(bus_get "$1" "$IF_VOLUME" Active)
    [ "$lock" = "$2" ] && [ "$active" = "$3" ] \
        || fail "$(bus_get "$1" "$IF_VOLUME" Name) on host $LAB_HOST: Lock '$lock', Active $active; expected Lock '$2', Active $3"
}

activate() {  # activate VOLUME_PATH [shared]
    if [ "${2:-}" = shared ]; then
        bus_call "$1" "$IF_VOLUME" Activate 'a{sv}' 1 shared b true > /dev/null
    else
        bus_call "$1" "$IF_VOLUME" Activate 'a{sv}' 0 > /dev/null
    fi
}
deactivate() {  # deactivate VOLUME_PATH
    bus_call "$1" "$IF_VOLUME" Deactivate > /dev/null
}

# allocate_active NAME: AllocateVolume(NAME, 4 MiB); in a shared pool the new
# volume is active here under an exclusive lock (LVM's lvcreate takes it, and
# zeroes the volume's start, docs/shared-pools.md). Prints the volume's path.
allocate_active() {
    local pool=$1 name=$2 vol
    vol=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' "$name" "$SMALL" 0)
    vol=$(await_object "$vol" "AllocateVolume $name")
    [ -n "$vol" ] || vol=$(vol_of "$name")
    echo "$vol"
}

# ---------------------------------------------------------------- setup (pair 1)

# The shared disk: the same one in both guests (a token written on A with
# O_DIRECT is read on B), at the by-id path the pool XML names; the root is vda.
lab_shared_disk() {
    local dev size token p
    p=$(peer)
    [ -b "$SHARED_DEV" ] || fail "$SHARED_DEV is missing: $(ls /dev/disk/by-id/ | tr '\n' ' ')"
    dev=$(readlink -f "$SHARED_DEV")
    [ "$dev" = /dev/vdb ] || fail "$SHARED_DEV is $dev, expected /dev/vdb (root on vda, shared disk at PCI 0x5)"
    findmnt -n -o SOURCE / | grep -qx /dev/vda || fail "the root is $(findmnt -n -o SOURCE /), not /dev/vda"
    size=$(blockdev --getsize64 "$dev")
    [ "$size" = "$SHARED_DISK_BYTES" ] || fail "$dev has $size bytes, expected $SHARED_DISK_BYTES"
    # The last MiB: nothing of LVM's there yet; zeroed again by A at the end.
    local seek=$((SHARED_DISK_BYTES / 1048576 - 1))
    if on_a; then
        head -c 1048576 /dev/urandom > /var/tmp/disk-token
        dd if=/var/tmp/disk-token of="$dev" bs=1M seek="$seek" count=1 oflag=direct conv=fsync status=none
        sync_put disk-token "$(sha256sum < /var/tmp/disk-token | cut -c1-64)"
        peer_wait disk-token-read 60
        dd if=/dev/zero of="$dev" bs=1M seek="$seek" count=1 oflag=direct conv=fsync status=none
        rm -f /var/tmp/disk-token
    else
        token=$(peer_wait disk-token 120)
        [ "$(dd if="$dev" bs=1M skip="$seek" count=1 iflag=direct status=none | sha256sum | cut -c1-64)" = "$token" ] \
            || fail "the last MiB of $dev on B is not what A wrote there: not one shared disk (or a cache in the way)"
        sync_put disk-token-read
        echo "host $p's token read back through $dev"
    fi
}

# As an admin would: the build under test from its .deb, LVM's lvmlockd
# switched on, the host's sanlock host_id (A: lvmlocal.conf; B: storaged.conf
# only, so that storaged's own setting is exercised), a 2 s sanlock I/O
# timeout for lvmlockd, sanlock and lvmlockd started, storaged restarted.
# lvmlocks.service (enabled by lvm2-lockd) is disabled: storaged starts and
# stops the shared pools' lockspaces itself; as shipped it also fails at boot
# (the lvmlock LV's node is not there yet).
shared_setup() {
    local deb lvmlockd_bin
    deb=$(ls "$LAB"/debs/storaged_*_all.deb | grep -v '~lab1' | head -1)
    [ -n "$deb" ] || fail "no .deb under test in the share"
    apt_local "$deb"
    case "$(installed_version)" in "install ok installed "*~lab1|"") fail "dpkg says '$(installed_version)'" ;; esac

    sed -i -E 's/^([[:space:]]*)#?[[:space:]]*use_lvmlockd = [01]/\1use_lvmlockd = 1/' /etc/lvm/lvm.conf
    [ "$(lvmconfig global/use_lvmlockd)" = use_lvmlockd=1 ] \
        || fail "lvm.conf: global/use_lvmlockd is '$(lvmconfig global/use_lvmlockd 2>&1)' after the edit"
    if on_a; then
        sed -i -E 's/^([[:space:]]*)#?[[:space:]]*host_id = [0-9]+/\1host_id = 1/' /etc/lvm/lvmlocal.conf
        [ "$(lvmconfig local/host_id)" = host_id=1 ] \
            || fail "lvmlocal.conf: local/host_id is '$(lvmconfig local/host_id 2>&1)' after the edit"
    else
        ! lvmconfig local/host_id > /dev/null 2>&1 || [ "$(lvmconfig local/host_id)" = host_id=0 ] \
            || fail "B must have no host_id in lvmlocal.conf; it has $(lvmconfig local/host_id)"
        grep -q '^\[daemon\]' /etc/storaged/storaged.conf || fail "no [daemon] section in storaged.conf"
        sed -i '/^\[daemon\]/a host_id = 2' /etc/storaged/storaged.conf
        grep -A3 '^\[daemon\]' /etc/storaged/storaged.conf
    fi

    lvmlockd_bin=$(dpkg -L lvm2-lockd | grep -E '/s?bin/lvmlockd$' | head -1)
    [ -x "$lvmlockd_bin" ] || fail "lvm2-lockd ships no lvmlockd binary (dpkg -L)"
    mkdir -p /etc/systemd/system/lvmlockd.service.d
    printf '[Service]\nExecStart=\nExecStart=%s --foreground --sanlock-timeout 2\n' "$lvmlockd_bin" \
        > /etc/systemd/system/lvmlockd.service.d/storaged-lab.conf
    systemctl disable lvmlocks.service
    systemctl daemon-reload
    timeout 60 systemctl enable sanlock.service lvmlockd.service
    timeout 60 systemctl restart sanlock.service
    timeout 60 systemctl restart lvmlockd.service
    systemctl show -p ExecStart --value lvmlockd.service | grep -q -- '--sanlock-timeout 2' \
        || fail "lvmlockd.service runs without --sanlock-timeout 2: $(systemctl show -p ExecStart --value lvmlockd.service)"
    sanlock client status
    lvmlockctl --info
    timeout 90 systemctl restart storaged.service
    wait_active 60
    storagectl pool-list || true
}

# lvmlockd remembers that a sanlock global lock existed (in the VG just
# removed): storaged's CreatePool then failed at its pvcreate with "Global lock
# failed: check that global lockspace is started". A restart forgets it, as
# on a host that never had a shared VG.
lvmlockd_forget() {
    timeout 60 systemctl restart lvmlockd.service
    lvmlockctl --info
}

# The lab itself, with plain LVM (no storaged): a shared VG made on A is seen
# on B after its lock start; B cannot activate A's exclusive LV; then removed
# (B stops its lockspace first) so that the disk is blank for CreatePool.
lab_shared_lvm() {
    local out rc
    # B has its host_id in storaged.conf only: plain LVM gets it on the command line.
    local hostcfg=(--config "local { host_id = 2 }")
    if on_a; then
        trap 'set +eu; lvchange -an '"$LAB_VG"' >/dev/null 2>&1; vgremove -ff -y '"$LAB_VG"' >/dev/null 2>&1; wipefs -a -q '"$SHARED_DEV"' >/dev/null 2>&1' EXIT
        vgcreate --shared "$LAB_VG" "$SHARED_DEV"
        lvcreate -q -y -n lv1 -L 8M "$LAB_VG"
        out=$(lvmlockctl --info)
        grep -q '^LK LV ex' <<< "$out" || fail "lvmlockctl --info shows no exclusive LV lock after lvcreate on A: $(tr '\n' ' ' <<< "$out")"
        sync_put lab-vg-made
        peer_wait lab-vg-checked 180 > /dev/null
        lvchange -an "$LAB_VG/lv1"
        lvremove -q -y "$LAB_VG/lv1"
        peer_wait lab-vg-stopped 60 > /dev/null
        # A's sanlock sees B's released lease at its next renewal (seconds):
        # until then vgremove says "Lockspace ... not stopped on other hosts".
        local start=$SECONDS
        until out=$(vgremove -y "$LAB_VG" 2>&1); do
            echo "$out"
            grep -q "not stopped on other hosts" <<< "$out" || fail "vgremove $LAB_VG on A: $out"
            ((SECONDS - start < 60)) || fail "vgremove $LAB_VG on A: still '$out' 60 s after B stopped its lockspace"
            sleep 3
        done
        echo "$out"
        echo "vgremove succeeded $((SECONDS - start)) s after B's lock stop"
        wipefs -a "$SHARED_DEV"
        lvmlockd_forget
        sync_put lab-vg-removed
    else
        trap 'set +eu; vgchange --config "local { host_id = 2 }" --lock-stop '"$LAB_VG"' >/dev/null 2>&1' EXIT
        peer_wait lab-vg-made 240 > /dev/null
        vgchange "${hostcfg[@]}" --lock-start "$LAB_VG"
        lvs "$LAB_VG/lv1"
        rc=0
        out=$(lvchange "${hostcfg[@]}" -aey "$LAB_VG/lv1" 2>&1) || rc=$?
        echo "$out"
        [ "$rc" != 0 ] || fail "lvchange -aey of $LAB_VG/lv1 on B succeeded while A holds it"
        grep -q "locked by other host" <<< "$out" || fail "lvchange -aey on B failed ($rc) but not with 'locked by other host': $out"
        sync_put lab-vg-checked
        vgchange "${hostcfg[@]}" --lock-stop "$LAB_VG"
        sync_put lab-vg-stopped
        peer_wait lab-vg-removed 120 > /dev/null
        ! vgs "$LAB_VG" > /dev/null 2>&1 || fail "B still sees VG $LAB_VG after A removed it"
        lvmlockd_forget
        trap - EXIT
    fi
}

# ---------------------------------------------------------------- 1. create on A, import on B

shared_pool() {
    local pool vg uuid value tags want_path want_uuid
    if on_a; then
        echo "$SHARED_XML"
        pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" CreatePool s "$SHARED_XML")
        pool=$(await_object "$pool" "CreatePool $SHARED_POOL")
        [ -n "$pool" ] || pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupPool s "$SHARED_POOL")
    else
        value=$(peer_wait pool-created 280)
        read -r vg want_path want_uuid <<< "$value"
        pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" ImportPool s "$vg")
        pool=$(await_object "$pool" "ImportPool $vg")
        [ -n "$pool" ] || pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupPool s "$SHARED_POOL")
        [ "$pool" = "$want_path" ] || fail "ImportPool $vg on B gave $pool; A's pool is $want_path"
    fi
    case "$pool" in "$SD_ROOT"/pools/?*) ;; *) fail "not a pool object path: '$pool'" ;; esac
    wait_shared_running "$pool" 180
    vg=$(bus_get "$pool" "$IF_POOL" VolumeGroup)
    uuid=$(bus_get "$pool" "$IF_POOL" UUID)
    [ "$pool" = "$SD_ROOT/pools/${uuid//-/_}" ] || fail "pool path $pool does not end in its UUID $uuid"
    [ "$(bus_get "$pool" "$IF_POOL" Name)" = "$SHARED_POOL" ] || fail "Name is '$(bus_get "$pool" "$IF_POOL" Name)'"
    [ "$(bus_get "$pool" "$IF_POOL" Shared)" = true ] || fail "Shared is $(bus_get "$pool" "$IF_POOL" Shared) on host $LAB_HOST"
    [ "$(bus_get "$pool" "$IF_POOL" LockType)" = sanlock ] || fail "LockType is '$(bus_get "$pool" "$IF_POOL" LockType)' on host $LAB_HOST"
    local want_id=1; on_a || want_id=2
    [ "$(bus_get "$pool" "$IF_POOL" HostId)" = "$want_id" ] \
        || fail "HostId is $(bus_get "$pool" "$IF_POOL" HostId) on host $LAB_HOST, expected $want_id"
    vgs -o vg_name,vg_lock_type,vg_tags "$vg"
    [ "$(vgs --noheadings -o vg_lock_type "$vg" | tr -d ' ')" = sanlock ] || fail "VG $vg's lock type is not sanlock"
    tags=$(vgs --noheadings -o vg_tags "$vg" | tr -d ' ')
    [[ "$tags" == *"$SHARED_POOL"* && "$tags" == *"$uuid"* ]] || fail "VG $vg's tags '$tags' do not carry the pool's name and UUID $uuid"
    state_set pool.shared "$pool"
    state_set vg.shared "$vg"
    pool_up
    if on_a; then
        sync_put pool-created "$vg $pool $uuid"
        value=$(peer_wait pool-imported 280)
        [ "$value" = "$pool $uuid" ] || fail "B imported '$value'; A has '$pool $uuid'"
    else
        [ "$uuid" = "$want_uuid" ] || fail "UUID on B $uuid, on A $want_uuid"
        sync_put pool-imported "$pool $uuid"
    fi
    info "host $LAB_HOST: pool $SHARED_POOL $pool running, HostId $want_id, VG $vg"
}

# wait_shared_running POOL SECONDS: running; degraded is allowed meanwhile (a
# lockspace starting), failed is not.
wait_shared_running() {
    local pool=$1 limit=$2 start=$SECONDS state
    while :; do
        state=$(bus_get "$pool" "$IF_POOL" State)
        case "$state" in
            running) return 0 ;;
            failed) fail "pool $pool failed on host $LAB_HOST: $(bus_get "$pool" "$IF_POOL" StateReason)" ;;
        esac
        ((SECONDS - start < limit)) || fail "pool $pool is '$state' after ${limit}s on host $LAB_HOST: $(bus_get "$pool" "$IF_POOL" StateReason)"
        sleep 1
    done
}

# ---------------------------------------------------------------- 2. visibility

# A volume allocated on A appears on B within 1 s, measured on B only:
#   figure = (B sees it on its bus) - (B sees A's barrier) - (A's call duration)
# A writes the barrier just before it calls AllocateVolume and its call's
# duration just after. Estimation error: B notices the barrier 0-50 ms (its
# poll) plus one 9p lookup after A wrote it, which makes the figure smaller by
# that much; B notices the volume 0-50 ms plus one LookupVolume round trip after
# it is there, which makes it larger by that much; A's duration includes
# the D-Bus round trip and storaged's work after lvcreate, so the figure counts
# from A's answer, not from the instant the LV was on disk (a volume storaged
# makes visible on B before A's call returns gives a figure <= 0). All in all
# about +-0.1 s under emulation.
shared_visibility() {
    local pool vol t0 t1 out seen appear dur figure
    pool=$(shared_pool_path)
    if on_a; then
        peer_wait vis-watching 60 > /dev/null
        t0=$(now_ms)
        sync_put vis-start
        vol=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' vis "$SMALL" 0)
        vol=$(await_object "$vol" "AllocateVolume vis")
        t1=$(now_ms)
        sync_put vis-call "$((t1 - t0))"
        [ -n "$vol" ] || vol=$(vol_of vis)
        # A new volume is active here under an exclusive lock (shared.api
        # asserts it); the next checks start from an inactive volume.
        state_set vis.after-allocate "Lock=$(vol_lock "$vol") Active=$(bus_get "$vol" "$IF_VOLUME" Active)"
        lvs -o lv_name,lv_active "$(shared_vg)/vis"
        [ "$(bus_get "$vol" "$IF_VOLUME" Active)" = false ] || deactivate "$vol"
    else
        out=$(python3 "$GUEST/sdbus.py" watch "$SYNC/vis-start" "$SYNC/vis-watching" "$SHARED_POOL" vis 90) \
            || fail "volume vis did not appear on B within 90 s of watching ($out)"
        echo "$out"
        seen=$(sed -n 's/.*seen_ms=\(-\{0,1\}[0-9]*\).*/\1/p' <<< "$out")
        appear=$(sed -n 's/.*appear_ms=\([0-9]*\).*/\1/p' <<< "$out")
        [ "$seen" -ge 0 ] || fail "B saw volume vis before A's barrier: $out"
        dur=$(peer_wait vis-call 60)
        figure=$((appear - seen - dur))
        info "BENCH shared visibility: a volume allocated on A is on B's bus ${figure} ms after A's AllocateVolume returned (B saw A's barrier at ${seen} ms, the volume at ${appear} ms; A's call took ${dur} ms; +-0.1 s)"
        state_set bench.visibility "$figure"
        vol=$(vol_of vis)
        [ "$(vol_lock "$vol")" = none ] || fail "volume vis made on A has Lock '$(vol_lock "$vol")' on B"
        ((figure <= 1000)) || fail "volume vis appeared on B ${figure} ms after A's AllocateVolume returned (more than 1 s)"
    fi
}

# ---------------------------------------------------------------- the API as specified

# What docs/shared-pools.md says of a new volume and of the pool's properties:
# AllocateVolume leaves it active on the allocating host under an exclusive
# lock; the pool is Shared, LockType sanlock, HostId this host's.
shared_api() {
    local pool after
    pool=$(shared_pool_path)
    [ "$(bus_get "$pool" "$IF_POOL" Shared) $(bus_get "$pool" "$IF_POOL" LockType)" = "true sanlock" ] \
        || fail "host $LAB_HOST: Shared/LockType of the pool: $(bus_get "$pool" "$IF_POOL" Shared) $(bus_get "$pool" "$IF_POOL" LockType)"
    if on_a; then
        after=$(state_need vis.after-allocate)
        [ "$after" = "Lock=exclusive Active=true" ] \
            || fail "AllocateVolume in the shared pool: the new volume had $after; expected Lock=exclusive Active=true"
    fi
}

# ---------------------------------------------------------------- 3. exclusive

shared_exclusive() {
    local vol out rc
    vol=$(vol_of vis)
    if on_a; then
        activate "$vol"
        expect_lock "$vol" exclusive true
        grep '^LK LV ex' <<< "$(lvmlockctl --info)" || fail "lvmlockctl --info shows no exclusive LV lock on A"
        sync_put excl-held
        peer_wait excl-checked 90 > /dev/null
        deactivate "$vol"
        expect_lock "$vol" none false
        sync_put excl-released
    else
        peer_wait excl-held 120 > /dev/null
        rc=0
        out=$(sd_try "$vol" "$IF_VOLUME" Activate 'a{sv}' '[{}]') || rc=$?
        echo "Activate on B: status $rc: $out"
        [ "$rc" = 3 ] || fail "Activate on B succeeded (or failed oddly, status $rc) while A holds the volume: $out"
        [ "$(head -n 1 <<< "$out")" = org.storaged.Storaged1.Error.Busy ] \
            || fail "Activate on B while A holds it: $(head -n 1 <<< "$out"), not org.storaged.Storaged1.Error.Busy: $(tail -n +2 <<< "$out")"
        grep -q "active on another host" <<< "$(tail -n +2 <<< "$out")" \
            || fail "the Busy error does not say 'active on another host': $(tail -n +2 <<< "$out")"
        expect_lock "$vol" none false
        sync_put excl-checked
    fi
}

# ---------------------------------------------------------------- 4. shared activation

shared_shared_activation() {
    local vol dev
    vol=$(vol_of vis)
    dev=$(bus_get "$vol" "$IF_VOLUME" Path)
    if on_a; then
        activate "$vol" shared
        expect_lock "$vol" shared true
        wait_block "$dev" 30
        write_pattern shv "$dev"
        sync_put shv-sha "$(cat "$STATE/shv.sha256")"
        peer_wait shv-verified 120 > /dev/null
        expect_lock "$vol" shared true    # both hosts hold it shared now
        grep '^LK LV sh' <<< "$(lvmlockctl --info)" || fail "lvmlockctl --info shows no shared LV lock on A"
        deactivate "$vol"
        expect_lock "$vol" none false
        sync_put shv-a-off
    else
        peer_wait shv-sha 120 > "$STATE/shv.sha256"
        activate "$vol" shared
        expect_lock "$vol" shared true
        wait_block "$dev" 30
        verify_pattern shv "$dev"
        sync_put shv-verified
        peer_wait shv-a-off 90 > /dev/null
        deactivate "$vol"
        activate "$vol"
        expect_lock "$vol" exclusive true
        verify_pattern shv "$dev"
        deactivate "$vol"
        expect_lock "$vol" none false
    fi
}

# ---------------------------------------------------------------- 5. concurrent allocation

# 16 AllocateVolume calls from each host at once; then both hosts' Volume
# objects and both hosts' lvs list the same names.
shared_concurrent() {
    local pool vg i dir failed=() p names_bus names_lvs start
    pool=$(shared_pool_path); vg=$(shared_vg); p=$(peer)
    dir=$(mktemp -d)
    meet cc-ready 120
    start=$SECONDS
    for i in $(seq -w 1 16); do
        ( rc=0; out=$(busctl --timeout=300 --json=short call "$SD_BUS" "$pool" "$IF_POOL" AllocateVolume \
              'sta{sv}' "c$LAB_HOST$i" "$SMALL" 0 2>&1) || rc=$?
          echo "$out" > "$dir/$i.out"; echo "$rc" > "$dir/$i.rc" ) &
    done
    wait
    for i in $(seq -w 1 16); do
        if [ "$(cat "$dir/$i.rc")" != 0 ]; then
            failed+=("c$LAB_HOST$i: $(head -c 200 "$dir/$i.out")")
        elif grep -q '/jobs/' "$dir/$i.out"; then
            await_object "$(bus_json_values call < "$dir/$i.out")" "AllocateVolume c$LAB_HOST$i" > /dev/null
        fi
    done
    rm -rf "$dir"
    info "host $LAB_HOST: 16 concurrent AllocateVolume calls ended in $((SECONDS - start)) s, ${#failed[@]} failed"
    [ ${#failed[@]} = 0 ] || fail "${#failed[@]} of 16 AllocateVolume calls failed on host $LAB_HOST: ${failed[*]}"
    meet cc-done 400
    # Volumes made on the other host may reach this host's bus a moment later.
    names_lvs=$(lvs --noheadings -o lv_name "$vg" | tr -d ' ' | grep -v '^\[' | sort)
    for i in $(seq 20); do
        names_bus=$(python3 "$GUEST/sdbus.py" names "$pool")
        [ "$names_bus" != "$names_lvs" ] || break
        sleep 0.5
    done
    printf '%s\n' "$names_bus" > "$SYNC/$LAB_HOST.cc-bus"
    printf '%s\n' "$names_lvs" > "$SYNC/$LAB_HOST.cc-lvs"
    meet cc-listed 120
    for i in $(seq -w 1 16); do
        grep -qx "ca$i" <<< "$names_lvs" && grep -qx "cb$i" <<< "$names_lvs" \
            || fail "lvs on host $LAB_HOST lacks ca$i or cb$i"
    done
    local f
    for f in "$LAB_HOST.cc-bus" "$p.cc-bus" "$p.cc-lvs"; do
        cmp -s "$SYNC/$LAB_HOST.cc-lvs" "$SYNC/$f" \
            || fail "volume names differ: $f vs $LAB_HOST.cc-lvs: $(diff "$SYNC/$LAB_HOST.cc-lvs" "$SYNC/$f" | grep '^[<>]' | head -6 | tr '\n' ' ')"
    done
    echo "$(wc -l < "$SYNC/$LAB_HOST.cc-lvs") volume names, the same in both hosts' lvs and on both buses"
}

# ---------------------------------------------------------------- 6. benchmarks

# A: AllocateVolume against a bare lvcreate (not left active, as storaged
# leaves a shared pool's volume) in the same VG, median of 5 each; alone, then
# while B allocates in a loop. Figures, not pass/fail.
# The bare command does what storaged did with the first volume: lvcreate -an
# -Zn if it left it inactive (the spec), plain lvcreate (active, exclusive,
# zeroed) if active.
bench_round() {  # bench_round POOL VG TAG: prints "sd_median bare_median"
    local pool=$1 vg=$2 tag=$3 i t sd=() bare=() vol bare_opts=()
    for i in 1 2 3 4 5; do
        t=$(now_ms)
        vol=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' "bs$tag$i" "$SMALL" 0)
        sd+=($(( $(now_ms) - t )))
        if [ "$i" = 1 ]; then
            [ "$(bus_get "$(vol_of "bs${tag}1")" "$IF_VOLUME" Active)" = true ] || bare_opts=(-an -Zn)
            echo "bare: lvcreate ${bare_opts[*]}" >&2
        fi
        t=$(now_ms)
        lvcreate -q -y "${bare_opts[@]}" -L "${SMALL}b" -n "bl$tag$i" "$vg" > /dev/null
        bare+=($(( $(now_ms) - t )))
    done
    echo "storaged ${sd[*]} ms; lvcreate ${bare[*]} ms" >&2
    echo "$(printf '%s\n' "${sd[@]}" | median) $(printf '%s\n' "${bare[@]}" | median) lvcreate${bare_opts[*]:+ ${bare_opts[*]}}"
}

shared_bench() {
    local pool vg sd bare cmd n=0 start out
    pool=$(shared_pool_path); vg=$(shared_vg)
    if on_a; then
        out=$(bench_round "$pool" "$vg" a)
        read -r sd bare cmd <<< "$out"
        info "BENCH shared AllocateVolume median ${sd} ms vs $cmd ${bare} ms ($(ratio "$sd" "$bare")x; goal <= 1.15)"
        sync_put bench-load-start
        peer_wait bench-load-on 60 > /dev/null
        out=$(bench_round "$pool" "$vg" c)
        read -r sd bare cmd <<< "$out"
        sync_put bench-load-stop
        n=$(peer_wait bench-load-count 120)
        info "BENCH shared AllocateVolume with host B allocating: median ${sd} ms vs $cmd ${bare} ms ($(ratio "$sd" "$bare")x; B made $n volumes meanwhile)"
    else
        peer_wait bench-load-start 300 > /dev/null
        sync_put bench-load-on
        start=$SECONDS
        while [ ! -e "$SYNC/bench-load-stop" ] && ((SECONDS - start < 240)); do
            n=$((n + 1))
            bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' "bload$n" "$SMALL" 0 > /dev/null
        done
        sync_put bench-load-count "$n"
        [ -e "$SYNC/bench-load-stop" ] || fail "A did not end its benchmark within 240 s"
    fi
}

# ---------------------------------------------------------------- 7. failover

# A holds volume fo exclusively with a pattern on it; the host kills A's QEMU
# (SIGKILL) once A's plan has ended (finish_shared_a); B retries Activate every
# 2 s (each refusal must be Busy) until it gets the volume, bounded at 200 s,
# and finds the pattern.
shared_failover() {
    local pool vol dev t0 tries=0 rc out msgs=() seconds start
    pool=$(shared_pool_path)
    if on_a; then
        vol=$(allocate_active "$pool" fo)
        expect_lock "$vol" exclusive true
        dev=$(bus_get "$vol" "$IF_VOLUME" Path)
        wait_block "$dev" 30
        write_pattern fo "$dev"
        sync
        sync_put fo-sha "$(cat "$STATE/fo.sha256")"
        # finish_shared_a writes a-failover-ready after the results are in.
    else
        peer_wait fo-sha 300 > "$STATE/fo.sha256"
        vol=$(vol_of fo)
        dev=$(bus_get "$vol" "$IF_VOLUME" Path)
        # Not peer_wait: a-gone is the barrier here.
        start=$SECONDS
        until [ -e "$SYNC/a-gone" ]; do
            ((SECONDS - start < 120)) || fail "A's QEMU was not killed within 120 s of its pattern"
            sleep 0.05
        done
        [ "$(cat "$SYNC/a-gone")" = killed ] || fail "A's QEMU ended by itself ($(cat "$SYNC/a-gone")), not killed"
        t0=$(now_ms)
        while :; do
            tries=$((tries + 1))
            rc=0
            out=$(sd_try "$vol" "$IF_VOLUME" Activate 'a{sv}' '[{}]') || rc=$?
            [ "$rc" = 0 ] && break
            [ "$rc" = 3 ] && [ "$(head -n 1 <<< "$out")" = org.storaged.Storaged1.Error.Busy ] \
                || fail "try $tries: Activate after A's crash failed with something else than Busy (status $rc): $(echo "$out" | tr '\n' ' ')"
            msgs+=("$(tail -n +2 <<< "$out")")
            (( $(now_ms) - t0 < 200000 )) || fail "B could not activate fo within 200 s of A's crash ($tries tries); last: ${msgs[-1]}"
            sleep 2
        done
        seconds=$(awk -v ms="$(( $(now_ms) - t0 ))" 'BEGIN { printf "%.1f", ms / 1000 }')
        echo "refusals before the takeover (Busy): $(printf '%s\n' "${msgs[@]}" | sort | uniq -c | head -5 | tr '\n' ';')"
        expect_lock "$vol" exclusive true
        wait_block "$dev" 30
        verify_pattern fo "$dev"
        state_set bench.failover "$seconds"
        info "BENCH shared failover: B activated A's volume ${seconds} s after A was killed ($tries tries, $((tries - 1)) Busy refusals; sanlock I/O timeout 2 s)"
        # B powers off with the pool running and fo active: the shutdown unit must stop it.
    fi
}

# ---------------------------------------------------------------- 8. after the crash, after the reboot

# A after its crash, same host_id: the lock start waits for its own old lease;
# meanwhile the pool is degraded with a reason saying so (never failed), then running.
shared_after_crash() {
    local pool state reason seen_degraded="" start=$SECONDS last="" up
    pool=$(shared_pool_path)
    read -r up _ < /proc/uptime
    while :; do
        state=$(bus_get "$pool" "$IF_POOL" State)
        reason=$(bus_get "$pool" "$IF_POOL" StateReason)
        if [ "$state $reason" != "$last" ]; then
            echo "+$((SECONDS - start))s: $state: $reason"
            last="$state $reason"
        fi
        case "$state" in
            failed) fail "pool $SHARED_POOL failed after A's crash: $reason" ;;
            degraded)
                grep -qiE 'lock|lease' <<< "$reason" || fail "pool degraded, but the reason does not mention the lockspace/lease: '$reason'"
                [ -n "$seen_degraded" ] || seen_degraded="$reason" ;;
            running) break ;;
        esac
        ((SECONDS - start < 200)) || fail "pool $SHARED_POOL is '$state' 200 s after the checks started ($reason)"
        sleep 1
    done
    if [ -z "$seen_degraded" ]; then
        # The join may be over before the lab's first look (A's old lease long
        # expired by the time this guest booted): the daemon's journal says
        # what the pool went through, as the bus said it then.
        local journal
        journal=$(journalctl -b -u storaged.service -o cat --no-pager | grep "pool $SHARED_POOL:")
        echo "$journal"
        grep -q -- "-> degraded (joining the volume group's lockspace" <<< "$journal" \
            || fail "the pool was running at the first look (uptime ${up}s) and the journal shows no degraded state while joining its lockspace"
        ! grep -q -- "-> failed" <<< "$journal" || fail "the pool went failed after A's crash: $(grep -- '-> failed' <<< "$journal")"
        seen_degraded="(from the journal) $(grep -m1 -- "-> degraded (joining" <<< "$journal")"
    fi
    pool_up
    info "host a after its crash: degraded ('$seen_degraded') then running $((SECONDS - start)) s after the first look (uptime ${up}s then)"
    local status
    status=$(sanlock client status)
    grep -q "lvm_$(shared_vg)" <<< "$status" || fail "sanlock has no lockspace lvm_$(shared_vg) on A: $(tr '\n' ' ' <<< "$status")"
}

# B rebooted (clean poweroff with the pool running): the pool runs again with
# its lockspace started, and volume fo activates (the pattern intact).
shared_after_reboot() {
    local pool vg vol dev
    pool=$(shared_pool_path); vg=$(shared_vg)
    wait_shared_running "$pool" 150
    pool_up
    local status info
    status=$(sanlock client status); info=$(lvmlockctl --info)
    echo "$status"; echo "$info"
    grep -q "lvm_$vg" <<< "$status" || fail "sanlock shows no lockspace lvm_$vg after the reboot: $(tr '\n' ' ' <<< "$status")"
    grep -q "$vg" <<< "$info" || fail "lvmlockctl --info does not list VG $vg after the reboot"
    vol=$(vol_of fo)
    activate "$vol"
    expect_lock "$vol" exclusive true
    dev=$(bus_get "$vol" "$IF_VOLUME" Path)
    wait_block "$dev" 30
    verify_pattern fo "$dev"
    deactivate "$vol"
}
