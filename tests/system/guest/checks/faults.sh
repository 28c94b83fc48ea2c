# Faults injected for real (issue 17): a PV that starts failing under a
# running pool, Jobs cancelled half-way (pvmove, wipe), the system bus
# restarted under the daemon.
#
# The faulty PV is a device-mapper device over a loop file, at an offset of
# 1 MiB (so that LVM never finds the PV's label on the loop device beneath as
# a duplicate). Its table is switched, under the running pool, to `error`
# (every I/O fails) and to `delay` (the PV's data area slowed down: slow
# enough to catch a pvmove or a wipe half-way), then back to `linear`.

FAULT_DM=labfaulty
FAULT_DEV=/dev/mapper/$FAULT_DM
FAULT_IMG=$STATE/faulty-backing.img
FAULT_SECTORS=$((256 * 2048))   # 256 MiB
FV_MIB=96                       # volume fv: what a pvmove has to copy
# The delay table slows down a part of the data area only (by default all but
# the first FAULT_FAST sectors: the PV's label and metadata area; LVM puts
# the first extent at 1 MiB), so that every LVM command, which reads the
# label and metadata of every PV, stays fast while the copy of the data and
# the wipe crawl. With the whole PV at 2000 ms per I/O, each LVM command took
# minutes (docs/hardening.md). The move slows down only the middle of fv:
# udev's blkid reads the start and the end of fv at each resume of it (the
# pvmove's set-up, the abort), and LVM waits for udev.
FAULT_FAST=2048
FAULT_POOL_XML="<pool type='lvm'><name>faulty</name>\
<physical_volume type='device'><device>$FAULT_DEV</device></physical_volume>\
<physical_volume type='file'><file size='160M'>/var/lib/storaged/images/faulty2.img</file></physical_volume>\
</pool>"

# fault_table linear|error|delay [READ_MS [WRITE_MS [FROM TO]]]: switch the
# faulty PV's table under whatever uses it (delay: sectors FROM to TO, by
# default FAULT_FAST to the end, READ_MS per read and WRITE_MS per write,
# 500 ms each by default; the rest linear).
fault_table() {
    local loopdev table from=${4:-$FAULT_FAST} to=${5:-$FAULT_SECTORS}
    loopdev=$(loop_of "$FAULT_IMG")
    case "$1" in
        linear) table="0 $FAULT_SECTORS linear $loopdev 2048" ;;
        error) table="0 $FAULT_SECTORS error" ;;
        delay) table="0 $from linear $loopdev 2048
$from $((to - from)) delay $loopdev $((2048 + from)) ${2:-500} $loopdev $((2048 + from)) ${3:-${2:-500}}"
               ((to == FAULT_SECTORS)) || table="$table
$to $((FAULT_SECTORS - to)) linear $loopdev $((2048 + to))" ;;
    esac
    dmsetup suspend "$FAULT_DM"
    dmsetup load "$FAULT_DM" --table "$table"
    dmsetup resume "$FAULT_DM"
    echo "$FAULT_DEV is now: $(dmsetup table "$FAULT_DM" | tr '\n' ';')"
}

pool_state_is() { [ "$(bus_get "$1" "$IF_POOL" State)" = "$2" ]; }
reason_names() { case "$(bus_get "$1" "$IF_POOL" StateReason)" in *"$2"*) return 0 ;; esac; return 1; }

# faults_cleanup: what faults.pv-io-errors and faults.cancel made, gone, even
# after a failure half-way: the pool (Stop, Delete, Undefine), the dm device,
# the loop device, the file.
faults_cleanup() {
    local saved pool vg l
    saved=$(trap -p ERR); trap - ERR; set +e
    [ -z "${MOVE_WATCHER:-}" ] || kill "$MOVE_WATCHER" 2> /dev/null
    [ -e "$FAULT_DEV" ] && [ "$(dmsetup table "$FAULT_DM" 2> /dev/null | awk '{print $3}')" != linear ] \
        && fault_table linear > /dev/null
    pool=$(busctl --json=short call "$SD_BUS" "$SD_MANAGER" "$IF_MANAGER" LookupPool s faulty 2> /dev/null \
           | bus_json_values call)
    vg=$(cat "$STATE/faults.vg" 2> /dev/null)
    if [ -n "$pool" ]; then
        for m in Stop Delete Undefine; do
            busctl --timeout=120 call "$SD_BUS" "$pool" "$IF_POOL" "$m" > /dev/null 2>&1
        done
    fi
    if [ -n "$vg" ] && vgs "$vg" > /dev/null 2>&1; then
        vgchange -an "$vg"; vgremove -f "$vg"
    fi
    if [ -e "$FAULT_DEV" ]; then
        pvremove -y "$FAULT_DEV" > /dev/null 2>&1
        dmsetup remove "$FAULT_DM"
    fi
    for l in $(loop_of "$FAULT_IMG"); do losetup -d "$l"; done
    rm -f "$FAULT_IMG" "$STATE/faults.pool" "$STATE/faults.vg" "$STATE/faults.fv" "$STATE/wv-end.pattern" \
        "$STATE/fv-all.sha256"
    set -e; eval "$saved"
}

# faults.pv-io-errors: the pool on the faulty PV made and checked; its PV then
# fails every I/O: the pool must turn degraded with a reason naming it, the
# daemon stay up, another pool be served; back to linear, the pool running
# and the data as written.
faults_pool_setup() {  # the faulty dm device, pool faulty on it and a file PV, volume fv with a pattern
    local loopdev pool vg vol dev
    faults_cleanup
    truncate -s $(((FAULT_SECTORS + 2048) * 512)) "$FAULT_IMG"
    loopdev=$(losetup --find --show "$FAULT_IMG")
    dmsetup create "$FAULT_DM" --table "0 $FAULT_SECTORS linear $loopdev 2048"
    udevadm settle --timeout=30 || true
    echo "$FAULT_POOL_XML"
    pool=$(create_pool faulty "$FAULT_POOL_XML")
    vg=$(bus_get "$pool" "$IF_POOL" VolumeGroup)
    state_set faults.pool "$pool"; state_set faults.vg "$vg"
    vol=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' fv $((FV_MIB * 1048576)) 0)
    dev=$(bus_get "$vol" "$IF_VOLUME" Path)
    wait_block "$dev" 30
    lvs --noheadings -o devices "$vg/fv" | grep -q "$FAULT_DEV" \
        || fail "fv is not on $FAULT_DEV: $(lvs --noheadings -o devices "$vg/fv")"
    pvs -o pv_name,pe_start,pv_size,vg_name "$FAULT_DEV"
    [ "$(pvs --noheadings --units s --nosuffix -o pe_start "$FAULT_DEV" | tr -d ' ')" -ge "$FAULT_FAST" ] \
        || fail "$FAULT_DEV's first extent is within its first $FAULT_FAST sectors, which the delay table leaves fast"
    write_pattern fv "$dev"
    blockdev --flushbufs "$dev"
    state_set faults.fv "$dev"
}

faults_pv_io_errors() {
    local pool vg dev pid reason rc other
    # Removed at the end whatever happens: nothing may be left to the checks
    # after it (faults_cancel makes its own).
    trap faults_cleanup EXIT
    faults_pool_setup
    pool=$(state_need faults.pool); vg=$(state_need faults.vg); dev=$(state_need faults.fv)
    pid=$(systemctl show -P MainPID storaged)

    fault_table error
    ! dd if="$dev" of=/dev/null bs=4096 count=1 iflag=direct status=none 2> /dev/null \
        || fail "fv still reads with its PV on the error target"
    wait_for 30 "pool faulty to turn degraded" pool_state_is "$pool" degraded
    echo "degraded: $(bus_get "$pool" "$IF_POOL" StateReason)"
    # The first reason may be the report's ("physical volume(s) UUID missing",
    # if a refresh ran before the poll read the device); the poll's, naming
    # the device, follows within a second or two.
    wait_for 15 "StateReason to name $FAULT_DEV" reason_names "$pool" "$FAULT_DEV"
    reason=$(bus_get "$pool" "$IF_POOL" StateReason)
    echo "degraded: $reason"
    rc=0; lvm fullreport > /dev/null 2>&1 || rc=$?
    echo "lvm fullreport with the PV failing: exit status $rc"
    [ "$(systemctl show -P MainPID storaged)" = "$pid" ] || fail "storaged restarted (pid $pid is gone)"
    # Other pools are served meanwhile: a volume made and removed on the default pool.
    other=$(state_need pool.default)
    bus_call "$other" "$IF_POOL" AllocateVolume 'sta{sv}' faultprobe $((4 * 1048576)) 0 > /dev/null
    bus_call "$other" "$IF_POOL" DeallocateVolume s faultprobe > /dev/null
    bus_call "$pool" "$IF_POOL" GetXML > /dev/null
    [ "$(bus_get "$pool" "$IF_POOL" State)" = degraded ] || fail "pool faulty is $(bus_get "$pool" "$IF_POOL" State) with its PV failing"

    fault_table linear
    wait_for 60 "pool faulty to run again" pool_state_is "$pool" running
    echo "running again; StateReason '$(bus_get "$pool" "$IF_POOL" StateReason)'"
    verify_pattern fv "$dev"
    [ "$(systemctl show -P MainPID storaged)" = "$pid" ] || fail "storaged restarted (pid $pid is gone)"
    journalctl -b -u storaged.service --no-pager -o cat | grep -E "faulty|$FAULT_DEV" | tail -n 8
}

# job_progress JOB: prints Progress.
job_progress() { bus_get "$1" "$IF_JOB" Progress; }
job_started() { awk -v p="$(job_progress "$1")" 'BEGIN { exit !(p > 0) }'; }

# pvmove_sync VG: the pvmove mirror's copied/total regions, from
# device-mapper's own status (an LVM command would scan the PVs).
pvmove_sync() {
    dmsetup status "$1-pvmove0" 2> /dev/null | grep -oE '[0-9]+/[0-9]+' | head -n 1
}
# pvmove_copying VG: the pvmove's mirror is in the kernel and has copied some
# of its regions, not all: the move is half-way.
pvmove_copying() {
    local sync
    sync=$(pvmove_sync "$1")
    [ -n "$sync" ] && awk -v s="$sync" 'BEGIN { split(s, a, "/"); exit !(a[1] > 0 && a[1] < a[2]) }'
}

# cancel_half_way WHAT JOB STARTED...: waits until the command STARTED...
# succeeds (the work is under way), cancels JOB, and checks it ends
# cancelled, not done. CANCEL_INFO (if set) is a command whose output says how
# far the work had got when Cancel was called.
cancel_half_way() {
    local what=$1 job=$2 progress info="" t0 took
    shift 2
    case "$job" in "$SD_ROOT"/jobs/*) ;; *) fail "$what returned '$job', not a Job" ;; esac
    wait_for 120 "$what to be under way" "$@"
    job_completed "$job" && fail "$what was done before it could be cancelled"
    progress=$(job_progress "$job")
    awk -v p="$progress" 'BEGIN { exit !(p < 1) }' || fail "$what is at Progress $progress: too late to cancel"
    [ -z "${CANCEL_INFO:-}" ] || info=$($CANCEL_INFO)
    t0=$(date +%s.%N)
    bus_call "$job" "$IF_JOB" Cancel > /dev/null
    wait_for 120 "$what to end after Cancel" job_completed "$job"
    took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    echo "$what: cancelled at Progress $progress${info:+ ($info)}; the Job ended ${took} s after Cancel;" \
        "Error '$(bus_get "$job" "$IF_JOB" Error)'"
    serial "INFO CANCEL $what: at Progress $progress${info:+ ($info)}, ended ${took} s after Cancel"
    [ "$(bus_get "$job" "$IF_JOB" ErrorName)" = org.storaged.Storaged1.Error.Cancelled ] \
        || fail "$what ended with '$(bus_get "$job" "$IF_JOB" ErrorName)', not Cancelled"
}

# faults.cancel: its own faulty pool, its PV's data area slowed down (delay
# target), a RemovePhysicalVolume (pvmove) and a Wipe cancelled half-way.
# After the pvmove: the PV still in the VG, no pvmove LV left (pvmove --abort
# done), fv still on the PV, its node there, its data as written; after the
# Wipe: the volume's end not zeroed (it stopped), a Wipe afterwards zeroes it all.
faults_cancel() {
    local pool vg job dev wv wdev size want got since
    trap faults_cleanup EXIT
    faults_pool_setup
    pool=$(state_need faults.pool); vg=$(state_need faults.vg); dev=$(state_need faults.fv)
    # All of fv holds data (the move copies every region of it), checksummed.
    head -c $((FV_MIB * 1048576)) /dev/urandom | dd of="$dev" bs=1M oflag=direct conv=fsync status=none
    want=$(dd if="$dev" bs=1M iflag=direct status=none | sha256sum | cut -c1-64)
    echo "$want" > "$STATE/fv-all.sha256"

    lvs --noheadings -o devices "$vg/fv" | grep -q "$FAULT_DEV(0)" \
        || fail "fv does not start at $FAULT_DEV's first extent: $(lvs --noheadings -o devices "$vg/fv")"
    # fv is extents 0.. of the PV, from sector FAULT_FAST on: its first and
    # last 4 MiB stay fast (blkid), its middle crawls.
    fault_table delay 500 500 $((FAULT_FAST + 4 * 2048)) $((FAULT_FAST + (FV_MIB - 4) * 2048))
    since=$(date +%s)
    move_watch "$vg" > "$STATE/move-watch.log" 2>&1 &
    MOVE_WATCHER=$!
    job=$(bus_call "$pool" "$IF_POOL" RemovePhysicalVolume s "$FAULT_DEV")
    CANCEL_INFO="pvmove_report $vg" cancel_half_way "RemovePhysicalVolume $FAULT_DEV" "$job" pvmove_copying "$vg"
    kill "$MOVE_WATCHER" 2> /dev/null || true; wait "$MOVE_WATCHER" 2> /dev/null || true; MOVE_WATCHER=
    echo "--- the move as seen every 0.5 s (device-mapper, lvm processes)"
    cat "$STATE/move-watch.log"; rm -f "$STATE/move-watch.log"
    echo "--- what storaged said"
    journalctl -b -u storaged.service --since "@$since" --no-pager -o short-precise \
        | grep -E "RemovePhysicalVolume|pvmove|lvm \(pid|after the move|Cancel" || true
    fault_table linear
    lvs -a -o lv_name,lv_attr,devices "$vg"
    dmsetup info -c | grep -E "^Name|^$vg-" || true
    pvs --noheadings -o pv_name -S "vg_name=$vg" | grep -qw "$FAULT_DEV" \
        || fail "$FAULT_DEV is no longer a PV of $vg after the cancelled move"
    ! lvs -a --noheadings -o lv_name "$vg" | grep -q pvmove || fail "a pvmove LV is left in $vg"
    ! dmsetup ls | grep -q "^$vg-pvmove" || fail "a pvmove device is left in device-mapper"
    lvs --noheadings -o devices "$vg/fv" | grep -q "$FAULT_DEV" || fail "fv is no longer on $FAULT_DEV"
    [ "$(bus_get "$pool" "$IF_POOL" PhysicalVolumes | grep -c .)" = 2 ] || fail "the pool has not its two PVs"
    [ -b "$dev" ] || { ls -l "/dev/$vg/" /dev/mapper/ || true; udevadm info "/dev/mapper/$vg-fv" || true
                       fail "$dev is gone after the cancelled move: fv is $(lvs --noheadings -o lv_attr "$vg/fv")"; }
    got=$(dd if="$dev" bs=1M iflag=direct status=none | sha256sum | cut -c1-64)
    [ "$got" = "$want" ] || fail "fv's data changed across the cancelled move: sha256 $got, written $want"
    echo "$dev: all $FV_MIB MiB as written (sha256 $got)"
    wait_for 30 "pool faulty to be running" pool_state_is "$pool" running

    wv=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' wv $((48 * 1048576)) 0)
    wdev=$(bus_get "$wv" "$IF_VOLUME" Path)
    wait_block "$wdev" 30
    lvs --noheadings -o devices "$vg/wv" | grep -q "$FAULT_DEV" \
        || fail "wv is not on $FAULT_DEV (the slowed-down PV): $(lvs --noheadings -o devices "$vg/wv")"
    size=$(blockdev --getsize64 "$wdev")
    head -c 1048576 /dev/urandom > "$STATE/wv-end.pattern"
    dd if="$STATE/wv-end.pattern" of="$wdev" bs=1M seek=$((size / 1048576 - 1)) oflag=direct conv=fsync status=none
    # Writes slow (each zeroing of a chunk waits 2 s), reads as in the move.
    fault_table delay 500 2000
    job=$(bus_call "$wv" "$IF_VOLUME" Wipe)
    CANCEL_INFO="" cancel_half_way "Wipe wv" "$job" job_started "$job"
    fault_table linear
    dd if="$wdev" bs=1M skip=$((size / 1048576 - 1)) count=1 iflag=direct status=none \
        | cmp - "$STATE/wv-end.pattern" || fail "the cancelled Wipe went on to the end of wv"
    echo "wv's last MiB is as written: the Wipe stopped"
    run_job "Wipe wv" "$wv" "$IF_VOLUME" Wipe
    cmp -n "$size" "$wdev" /dev/zero || fail "$wdev is not all zeros after a full Wipe"
    rm -f "$STATE/wv-end.pattern"
    faults_cleanup
    ! vgs "$vg" > /dev/null 2>&1 || fail "VG $vg is left after the clean-up"
    [ ! -e "$FAULT_DEV" ] || fail "$FAULT_DEV is left after the clean-up"
}

# move_watch VG: every 0.5 s until killed, the time, the pvmove mirror's
# progress and the lvm processes (what the cancel of a move looks like).
move_watch() {
    local t0=$SECONDS now
    trap - ERR; set +e
    while sleep 0.5; do
        now=$(date +%T.%N)
        printf '%s %s | %s\n' "${now:0:11}" "$(pvmove_sync "$1" || true)" \
            "$(pgrep -a -f 'lvm|lvpoll' | grep -v pgrep | cut -c1-80 | tr '\n' ';')"
        ((SECONDS - t0 < 200)) || break
    done
}

# pvmove_report VG: how far the pvmove mirror has got (regions copied/total).
pvmove_report() { echo "mirror regions copied $(pvmove_sync "$1")"; }

# pool_summary: every pool's name, state and volumes (sorted), from the bus.
pool_summary() {
    busctl --json=short call "$SD_BUS" "$SD_ROOT" org.freedesktop.DBus.ObjectManager GetManagedObjects \
        | python3 -c '
import json, sys
objs = json.load(sys.stdin)["data"][0]
pools = {p: i["org.storaged.Storaged1.Pool"] for p, i in objs.items() if "org.storaged.Storaged1.Pool" in i}
vols = [(p, i["org.storaged.Storaged1.Volume"]) for p, i in objs.items() if "org.storaged.Storaged1.Volume" in i]
for path, pool in sorted(pools.items(), key=lambda x: x[1]["Name"]["data"]):
    names = sorted(v["Name"]["data"] for p, v in vols if p.startswith(path + "/"))
    print(pool["Name"]["data"], path, pool["State"]["data"], ",".join(names))
'
}

# faults.bus-restart (boot 2, after the checks that need the bus): dbus.service
# restarted under the daemon. storaged must exit non-zero (it serves nobody
# without the bus), systemd restart it (Restart=on-failure), and every pool be
# back as it was: same object paths, states and volumes.
faults_bus_restart() {
    local before after pid restarts since start
    before=$(pool_summary)
    echo "$before"
    pid=$(systemctl show -P MainPID storaged)
    restarts=$(systemctl show -P NRestarts storaged)
    since=$(date +%s)
    systemctl restart dbus.service
    wait_for 60 "storaged to be restarted" sh -c \
        "[ \"\$(systemctl show -P NRestarts storaged)\" -gt $restarts ] && systemctl is-active --quiet storaged"
    [ "$(systemctl show -P MainPID storaged)" != "$pid" ] || fail "storaged kept pid $pid across the bus restart"
    journalctl -b -u storaged.service --since "@$since" --no-pager -o cat | tail -n 15
    journalctl -b -u storaged.service --since "@$since" --no-pager -o cat \
        | grep -q "lost the connection to the bus" || fail "storaged did not say it lost the bus"
    journalctl -b -u storaged.service --since "@$since" --no-pager -o cat \
        | grep -Eq "code=exited, status=[1-9]" || fail "no non-zero exit of storaged in the journal"
    start=$SECONDS
    until after=$(pool_summary 2> /dev/null) && [ "$after" = "$before" ]; do
        ((SECONDS - start < 90)) || fail "pools after the bus restart differ: before
$before
after
${after:-nothing}"
        sleep 1
    done
    echo "every pool as before, $((SECONDS - start)) s after storaged was back"
    # The rest of the system still has its bus.
    busctl --timeout=30 status org.freedesktop.systemd1 > /dev/null || fail "systemd is not on the new bus"
}
