# Faults injected for real (issue 17): a PV that starts failing under a
# running pool, Jobs cancelled half-way (pvmove, wipe), the system bus
# restarted under the daemon.
#
# The faulty PV is a device-mapper device over a loop file, at an offset of
# 1 MiB (so that LVM never finds the PV's label on the loop device beneath as
# a duplicate). Its table is switched, under the running pool, to `error`
# (every I/O fails) and to `delay` (every I/O waits FAULT_DELAY ms: slow
# enough to catch a pvmove or a wipe half-way), then back to `linear`.

FAULT_DM=labfaulty
FAULT_DEV=/dev/mapper/$FAULT_DM
FAULT_IMG=$STATE/faulty-backing.img
FAULT_SECTORS=$((128 * 2048))   # 128 MiB
FAULT_DELAY=2000                # ms per I/O in the delay table
FAULT_POOL_XML="<pool type='lvm'><name>faulty</name>\
<physical_volume type='device'><device>$FAULT_DEV</device></physical_volume>\
<physical_volume type='file'><file size='64M'>/var/lib/storaged/images/faulty2.img</file></physical_volume>\
</pool>"

fault_table() {  # fault_table linear|error|delay: switch the faulty PV's table under whatever uses it
    local loopdev table
    loopdev=$(loop_of "$FAULT_IMG")
    case "$1" in
        linear) table="0 $FAULT_SECTORS linear $loopdev 2048" ;;
        error) table="0 $FAULT_SECTORS error" ;;
        delay) table="0 $FAULT_SECTORS delay $loopdev 2048 $FAULT_DELAY" ;;
    esac
    dmsetup suspend "$FAULT_DM"
    dmsetup load "$FAULT_DM" --table "$table"
    dmsetup resume "$FAULT_DM"
    echo "$FAULT_DEV is now: $(dmsetup table "$FAULT_DM")"
}

pool_state_is() { [ "$(bus_get "$1" "$IF_POOL" State)" = "$2" ]; }
reason_names() { case "$(bus_get "$1" "$IF_POOL" StateReason)" in *"$2"*) return 0 ;; esac; return 1; }

# faults_cleanup: what faults.pv-io-errors and faults.cancel made, gone, even
# after a failure half-way: the pool (Stop, Delete, Undefine), the dm device,
# the loop device, the file.
faults_cleanup() {
    local saved pool vg l
    saved=$(trap -p ERR); trap - ERR; set +e
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
    rm -f "$FAULT_IMG" "$STATE/faults.pool" "$STATE/faults.vg" "$STATE/wv-end.pattern"
    set -e; eval "$saved"
}

# faults.pv-io-errors: the pool on the faulty PV made and checked; its PV then
# fails every I/O: the pool must turn degraded with a reason naming it, the
# daemon stay up, another pool be served; back to linear, the pool running
# and the data as written.
faults_pv_io_errors() {
    local loopdev pool vg vol dev pid reason rc other
    # Removed at the end whatever happens: faults_cancel, which would go on
    # from this pool, is out of the plan (plan.sh), and nothing may be left to
    # the checks after it.
    trap faults_cleanup EXIT
    faults_cleanup
    truncate -s $(((FAULT_SECTORS + 2048) * 512)) "$FAULT_IMG"
    loopdev=$(losetup --find --show "$FAULT_IMG")
    dmsetup create "$FAULT_DM" --table "0 $FAULT_SECTORS linear $loopdev 2048"
    udevadm settle --timeout=30 || true
    echo "$FAULT_POOL_XML"
    pool=$(create_pool faulty "$FAULT_POOL_XML")
    vg=$(bus_get "$pool" "$IF_POOL" VolumeGroup)
    state_set faults.pool "$pool"; state_set faults.vg "$vg"
    vol=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' fv $((32 * 1048576)) 0)
    dev=$(bus_get "$vol" "$IF_VOLUME" Path)
    wait_block "$dev" 30
    lvs --noheadings -o devices "$vg/fv" | grep -q "$FAULT_DEV" \
        || fail "fv is not on $FAULT_DEV: $(lvs --noheadings -o devices "$vg/fv")"
    write_pattern fv "$dev"
    blockdev --flushbufs "$dev"
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

# pvmove_running VG: the pvmove's mirror is in the kernel (from device-mapper's
# own list: an LVM command would scan the slowed-down PV, seconds per look).
pvmove_running() { dmsetup ls | grep -q "^$1-pvmove"; }

# cancel_half_way WHAT JOB STARTED...: waits until the command STARTED...
# succeeds (the work is under way), cancels JOB, and checks it ends
# cancelled, not done.
cancel_half_way() {
    local what=$1 job=$2 progress
    shift 2
    case "$job" in "$SD_ROOT"/jobs/*) ;; *) fail "$what returned '$job', not a Job" ;; esac
    wait_for 120 "$what to be under way" "$@"
    job_completed "$job" && fail "$what was done before it could be cancelled"
    progress=$(job_progress "$job")
    awk -v p="$progress" 'BEGIN { exit !(p < 1) }' || fail "$what is at Progress $progress: too late to cancel"
    bus_call "$job" "$IF_JOB" Cancel > /dev/null
    wait_for 120 "$what to end after Cancel" job_completed "$job"
    echo "$what: cancelled at Progress $progress; Error '$(bus_get "$job" "$IF_JOB" Error)'"
    [ "$(bus_get "$job" "$IF_JOB" ErrorName)" = org.storaged.Storaged1.Error.Cancelled ] \
        || fail "$what ended with '$(bus_get "$job" "$IF_JOB" ErrorName)', not Cancelled"
}

# faults.cancel: on the faulty pool with its PV slowed down (delay target), a
# RemovePhysicalVolume (pvmove) and a Wipe cancelled half-way. After the
# pvmove: the PV still in the VG, no pvmove LV left (pvmove --abort done),
# the data as written; after the Wipe: the volume's end not zeroed (it
# stopped), a Wipe afterwards zeroes it all.
faults_cancel() {
    local pool vg job dev wv wdev size
    trap faults_cleanup EXIT
    pool=$(state_need faults.pool); vg=$(state_need faults.vg)
    dev=$(bus_get "$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupVolume ss faulty fv)" "$IF_VOLUME" Path)

    fault_table delay
    job=$(bus_call "$pool" "$IF_POOL" RemovePhysicalVolume s "$FAULT_DEV")
    cancel_half_way "RemovePhysicalVolume $FAULT_DEV" "$job" pvmove_running "$vg"
    fault_table linear
    lvs -a -o lv_name,devices "$vg"
    pvs --noheadings -o pv_name -S "vg_name=$vg" | grep -qw "$FAULT_DEV" \
        || fail "$FAULT_DEV is no longer a PV of $vg after the cancelled move"
    ! lvs -a --noheadings -o lv_name "$vg" | grep -q pvmove || fail "a pvmove LV is left in $vg"
    lvs --noheadings -o devices "$vg/fv" | grep -q "$FAULT_DEV" || fail "fv is no longer on $FAULT_DEV"
    [ "$(bus_get "$pool" "$IF_POOL" PhysicalVolumes | grep -c .)" = 2 ] || fail "the pool has not its two PVs"
    # udev made the node again at the abort's resume, slowly while every I/O waited 2 s.
    udevadm settle --timeout=30 || true
    [ -b "$dev" ] || { lvs -a -o lv_name,lv_attr,devices "$vg"; sleep 5; }
    [ -b "$dev" ] || fail "$dev is gone after the cancelled move: fv is $(lvs --noheadings -o lv_attr "$vg/fv")"
    verify_pattern fv "$dev"
    wait_for 30 "pool faulty to be running" pool_state_is "$pool" running

    wv=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' wv $((48 * 1048576)) 0)
    wdev=$(bus_get "$wv" "$IF_VOLUME" Path)
    wait_block "$wdev" 30
    size=$(blockdev --getsize64 "$wdev")
    head -c 1048576 /dev/urandom > "$STATE/wv-end.pattern"
    dd if="$STATE/wv-end.pattern" of="$wdev" bs=1M seek=$((size / 1048576 - 1)) oflag=direct conv=fsync status=none
    fault_table delay
    job=$(bus_call "$wv" "$IF_VOLUME" Wipe)
    cancel_half_way "Wipe wv" "$job" job_started "$job"
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
