# Jobs on real device-mapper: a PV emptied with pvmove, a volume grown, a
# volume wiped; each a Job that must complete with no error, data intact.

run_job() {  # run_job WHAT PATH IFACE METHOD SIG ARGS...: start a Job, wait for it
    local what=$1 job progress
    shift
    job=$(bus_call "$@")
    case "$job" in "$SD_ROOT"/jobs/*) ;; *) fail "$what returned '$job', not a Job" ;; esac
    wait_for 300 "Job $job ($what) to complete" job_completed "$job"
    [ -z "$(bus_get "$job" "$IF_JOB" Error)" ] || fail "$what: $(bus_get "$job" "$IF_JOB" Error)"
    progress=$(bus_get "$job" "$IF_JOB" Progress)
    echo "$what: Job $job done, Progress $progress"
    [ "$progress" = 1 ] || [ "$progress" = 1.0 ] || fail "$what: Progress is $progress at the end"
}

storaged_jobs_pvmove() {
    local pool vg dev pv extra
    pool=$(state_need pool.multi); vg=$(state_need vg.multi); dev=$(state_need dev.vol2)
    extra=/var/lib/storaged/images/m3.img
    bus_call "$pool" "$IF_POOL" AddPhysicalVolume s \
        "<physical_volume type='file'><file size='128M'>$extra</file></physical_volume>" > /dev/null
    pv=$(lvs --noheadings -o devices "$vg/vol2" | sed 's/(.*//; s/ //g' | head -n1)
    echo "vol2 is on $pv; moving it off"
    run_job "RemovePhysicalVolume $pv" "$pool" "$IF_POOL" RemovePhysicalVolume s "$pv"
    if pvs --noheadings -o pv_name -S "vg_name=$vg" | grep -qw "$pv"; then
        fail "$pv is still a PV of $vg"
    fi
    lvs -o lv_name,devices "$vg"
    verify_pattern vol2 "$dev"
}

storaged_jobs_resize() {
    local vol dev size
    vol=$(state_need vol.vol2); dev=$(state_need dev.vol2)
    run_job "Resize vol2" "$vol" "$IF_VOLUME" Resize 'ta{sv}' $((96 * 1024 * 1024)) 0
    size=$(blockdev --getsize64 "$dev")
    [ "$size" = $((96 * 1024 * 1024)) ] || fail "$dev has $size bytes after Resize to 96 MiB"
    [ "$(bus_get "$vol" "$IF_VOLUME" Capacity)" = $((96 * 1024 * 1024)) ] || fail "Capacity not updated"
    verify_pattern vol2 "$dev"
}

storaged_jobs_wipe() {
    local pool vol dev
    pool=$(state_need pool.default)
    vol=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' wipeme $((32 * 1024 * 1024)) 0)
    dev=$(bus_get "$vol" "$IF_VOLUME" Path)
    wait_block "$dev" 30
    write_pattern wipeme "$dev"
    blockdev --flushbufs "$dev"
    run_job "Wipe wipeme" "$vol" "$IF_VOLUME" Wipe
    cmp -n $((32 * 1024 * 1024)) "$dev" /dev/zero || fail "$dev is not all zeros after Wipe"
    bus_call "$pool" "$IF_POOL" DeallocateVolume s wipeme > /dev/null
}
