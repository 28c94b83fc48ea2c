# Thin pools, snapshots, clones, rename, Open and raw transfers on real
# device-mapper (issue 13). One pool "thin" on a file PV holds all of it.
#
# Recorded for boot 2 in $STATE:
#   pool.thin vol.tv1 dev.tv1        the pool, an overcommitted thin volume
#   snapthick.sha256 snapthin.sha256 pattern A, kept by the two snapshots
#   img.sha256                       the sparse 1 GiB image uploaded into "img"
#   vol.renamed                      the renamed volume's object path

THIN_POOL_XML="<pool type='lvm'><name>thin</name>\
<physical_volume type='file'><file size='900M'>/var/lib/storaged/images/thin1.img</file></physical_volume>\
</pool>"
MiB=1048576

thin_vol() {  # thin_vol POOL NAME MIB: a thin volume's object path
    bus_call "$1" "$IF_POOL" AllocateVolume 'sta{sv}' "$2" $(($3 * MiB)) 1 thin b true
}

# ThinDataUsage (0..1) as a percentage, whole.
thin_use() { python3 -c "print(int(float('$(bus_get "$1" "$IF_POOL" ThinDataUsage)') * 100))"; }

# For wait_for, which runs a command again and again: a $(...) in its
# arguments would be read only once.
thin_use_at_least() { [ "$(thin_use "$1")" -ge "$2" ]; }
thin_size_above() { [ "$(bus_get "$1" "$IF_POOL" ThinPoolSize)" -gt "$2" ]; }
job_progressed() { python3 -c "import sys; sys.exit(0 if float('$(bus_get "$1" "$IF_JOB" Progress)') > 0 else 1)"; }

storaged_thin_pool() {
    local pool tv1 tv2 size virt dev start use
    pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" CreatePool s "$THIN_POOL_XML")
    wait_pool_running "$pool" 60
    bus_call "$pool" "$IF_POOL" SetAutostart b true > /dev/null  # back after the reboot
    bus_call "$pool" "$IF_POOL" CreateThinPool 'ta{sv}' $((256 * MiB)) 2 \
        autoextend_threshold u 80 autoextend_percent u 50
    size=$(bus_get "$pool" "$IF_POOL" ThinPoolSize)
    [ "$size" = $((256 * MiB)) ] || fail "ThinPoolSize is $size after CreateThinPool(256 MiB)"
    tv1=$(thin_vol "$pool" tv1 512)
    tv2=$(thin_vol "$pool" tv2 512)
    virt=$(bus_get "$pool" "$IF_POOL" VirtualAllocation)
    ((virt >= 3 * size)) || fail "VirtualAllocation $virt is not 3x ThinPoolSize $size"
    [ "$(bus_get "$tv1" "$IF_VOLUME" Thin)" = true ] || fail "tv1 is not Thin"
    lvs -o lv_name,lv_size,pool_lv,data_percent,lv_tags "$(bus_get "$pool" "$IF_POOL" VolumeGroup)"
    dev=$(bus_get "$tv1" "$IF_VOLUME" Path)
    wait_block "$dev" 30
    # 100 MiB of data: the pool's use must follow within 5 s.
    head -c $((100 * MiB)) /dev/urandom > /var/tmp/tv1big
    dd if=/var/tmp/tv1big of="$dev" bs=4M oflag=direct conv=fsync status=none
    start=$SECONDS
    wait_for 5 "ThinDataUsage to show 100 MiB written" thin_use_at_least "$pool" 38
    info "thin: ThinDataUsage $(thin_use "$pool")% within $((SECONDS - start)) s of a 100 MiB write"
    cmp -n $((100 * MiB)) /var/tmp/tv1big "$dev" || fail "tv1 does not read back what was written"
    # Past the 80 % threshold: the daemon extends the thin pool by 50 %.
    dd if=/var/tmp/tv1big of="$(bus_get "$tv2" "$IF_VOLUME" Path)" bs=4M oflag=direct conv=fsync status=none
    dd if=/var/tmp/tv1big of="$(bus_get "$tv2" "$IF_VOLUME" Path)" bs=4M seek=25 oflag=direct conv=fsync status=none
    echo "ThinDataUsage now $(thin_use "$pool")%"
    wait_for 20 "the thin pool to be extended past its threshold" thin_size_above "$pool" "$size"
    use=$(thin_use "$pool")
    info "thin: thin pool extended to $(bus_get "$pool" "$IF_POOL" ThinPoolSize) bytes, now $use% used"
    journalctl -b -u storaged --no-pager -o cat | grep -q "extending it by" \
        || fail "no journal line about the extension"
    [ "$(bus_get "$pool" "$IF_POOL" State)" = running ] || fail "pool is $(bus_get "$pool" "$IF_POOL" State)"
    state_set pool.thin "$pool"; state_set vol.tv1 "$tv1"; state_set dev.tv1 "$dev"
    bus_call "$pool" "$IF_POOL" DeallocateVolume s tv2 > /dev/null
}

# snapshot_keeps KIND VOLUME_PATH: pattern A, snapshot, pattern B on the origin;
# the snapshot reads A, the origin B; Revert brings A back to the origin.
snapshot_keeps() {
    local kind=$1 vol=$2 snap dev sdev job origin
    dev=$(bus_get "$vol" "$IF_VOLUME" Path)
    write_pattern "snap$kind" "$dev"
    snap=$(bus_call "$vol" "$IF_VOLUME" Snapshot 'sa{sv}' "snap$kind" 0)
    origin=$(bus_get "$snap" "$IF_VOLUME" Origin)
    [ "$origin" = "$vol" ] || fail "snap$kind has Origin '$origin', not $vol"
    sdev=$(bus_get "$snap" "$IF_VOLUME" Path)
    wait_block "$sdev" 30
    write_pattern "after$kind" "$dev"
    verify_pattern "snap$kind" "$sdev"
    verify_pattern "after$kind" "$dev"
    # A copy for boot 2, as a second snapshot (Revert consumes the first).
    bus_call "$vol" "$IF_VOLUME" Snapshot 'sa{sv}' "keep$kind" 0 > /dev/null
    cp "$STATE/after$kind.sha256" "$STATE/keep$kind.sha256"
    job=$(bus_call "$snap" "$IF_VOLUME" Revert)
    wait_for 120 "Revert of snap$kind" job_completed "$job"
    [ -z "$(bus_get "$job" "$IF_JOB" Error)" ] || fail "Revert: $(bus_get "$job" "$IF_JOB" Error)"
    wait_block "$dev" 30
    verify_pattern "snap$kind" "$dev"
    lvs "$(dirname "$dev" | xargs basename)" -o lv_name,origin,lv_attr | grep -q "snap$kind" \
        && fail "snap$kind still exists after Revert"
    echo "snap$kind: reverted"
}

storaged_thin_snapshots() {
    local pool thick
    pool=$(state_need pool.thin)
    thick=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' thick $((32 * MiB)) 0)
    wait_block "$(bus_get "$thick" "$IF_VOLUME" Path)" 30
    snapshot_keeps thick "$thick"
    snapshot_keeps thin "$(state_need vol.tv1)"
    state_set vol.thick "$thick"
}

storaged_thin_clones() {
    local pool thick tv1 out vol job clone p
    pool=$(state_need pool.thin); thick=$(state_need vol.thick); tv1=$(state_need vol.tv1)
    mapfile -t out < <(bus_call "$thick" "$IF_VOLUME" Clone 'sa{sv}' thickclone 0)
    vol=${out[0]}; job=${out[1]}
    wait_for 120 "the thick clone's Job" job_completed "$job"
    [ -z "$(bus_get "$job" "$IF_JOB" Error)" ] || fail "Clone: $(bus_get "$job" "$IF_JOB" Error)"
    cmp "$(bus_get "$thick" "$IF_VOLUME" Path)" "$(bus_get "$vol" "$IF_VOLUME" Path)" \
        || fail "the thick clone differs from its origin"
    mapfile -t out < <(bus_call "$tv1" "$IF_VOLUME" Clone 'sa{sv}' thinclone 0)
    wait_for 30 "the thin clone's Job" job_completed "${out[1]}"
    [ "$(bus_get "${out[0]}" "$IF_VOLUME" Thin)" = true ] || fail "the clone of a thin volume is not thin"
    wait_block "$(bus_get "${out[0]}" "$IF_VOLUME" Path)" 30
    cmp "$(bus_get "$tv1" "$IF_VOLUME" Path)" "$(bus_get "${out[0]}" "$IF_VOLUME" Path)" \
        || fail "the thin clone differs from its origin"
    # A clone cancelled half-way leaves nothing: a 384 MiB thick source, in the
    # default pool (the thin pool's autoextend has taken most of this one).
    pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupPool s default)
    big=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' big $((384 * MiB)) 0)
    mapfile -t out < <(bus_call "$big" "$IF_VOLUME" Clone 'sa{sv}' bigclone 0)
    wait_for 60 "the big clone to make progress" job_progressed "${out[1]}"
    p=$(bus_get "${out[1]}" "$IF_JOB" Progress)
    bus_call "${out[1]}" "$IF_JOB" Cancel > /dev/null
    wait_for 30 "the cancelled clone's Job to end" job_completed "${out[1]}"
    info "thin: clone cancelled at Progress $p: $(bus_get "${out[1]}" "$IF_JOB" Error)"
    bus_get "${out[1]}" "$IF_JOB" ErrorName | grep -q Cancelled || fail "the cancelled Job's ErrorName"
    sleep 1
    lvs --noheadings -o lv_name | grep -qw bigclone && fail "bigclone is left after the cancel"
    bus_call "$pool" "$IF_POOL" DeallocateVolume s big > /dev/null
}

storaged_thin_rename() {
    local pool vol path
    pool=$(state_need pool.thin)
    vol=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupVolume ss thin thickclone)
    bus_call "$vol" "$IF_VOLUME" Rename s renamed > /dev/null
    path=$(bus_get "$vol" "$IF_VOLUME" Path)
    [ "$(bus_get "$vol" "$IF_VOLUME" Name)" = renamed ] || fail "Name not changed"
    case "$path" in */renamed) ;; *) fail "Path is $path after Rename" ;; esac
    wait_block "$path" 30
    state_set vol.renamed "$vol"
}

# Open as a user: polkit's yes for access-volumes lets labuser download a
# volume; without it, NotAuthorized.
storaged_thin_open() {
    local rules out
    id "$LAB_USER" > /dev/null 2>&1 || useradd --no-create-home --groups storaged "$LAB_USER"
    rules=/etc/polkit-1/rules.d/50-storaged-open.rules
    cat > "$rules" <<'RULES'
polkit.addRule(function(action, subject) {
    if (action.id == "org.storaged.Storaged1.access-volumes" && subject.user == "labuser")
        return polkit.Result.YES;
});
RULES
    systemctl restart polkit.service
    out=$(runuser -u "$LAB_USER" -- storagectl vol-download --no-progress thin thick /tmp/thick.img 2>&1) \
        || fail "labuser's vol-download with polkit's yes: $out"
    cmp /tmp/thick.img "$(bus_get "$(state_need vol.thick)" "$IF_VOLUME" Path)" \
        || fail "labuser's download differs from the volume"
    rm -f "$rules" /tmp/thick.img
    systemctl restart polkit.service
    out=$(runuser -u "$LAB_USER" -- storagectl vol-download thin thick /tmp/thick.img 2>&1) \
        && fail "labuser could open a volume without polkit's yes"
    echo "$out" | grep -qi "not authorized" || fail "refusal was '$out', not NotAuthorized"
}

# A sparse 1 GiB raw image with 24 MiB of data: upload, download, equal; the
# thin volume takes about the data's size in the thin pool.
storaged_thin_transfer() {
    local pool vol used
    pool=$(state_need pool.thin)
    rm -f /var/tmp/img.raw
    truncate -s 1G /var/tmp/img.raw
    for at in 0 300 900; do
        head -c $((8 * MiB)) /dev/urandom | dd of=/var/tmp/img.raw bs=1M seek=$at conv=notrunc status=none
    done
    sha256sum < /var/tmp/img.raw | cut -c1-64 > "$STATE/img.sha256"
    storagectl vol-create thin img 1G --thin
    storagectl vol-upload --no-progress thin img /var/tmp/img.raw
    storagectl vol-download --no-progress thin img /var/tmp/img.back
    cmp /var/tmp/img.raw /var/tmp/img.back || fail "the downloaded image differs from the uploaded one"
    du -k /var/tmp/img.back
    [ "$(du -k /var/tmp/img.back | cut -f1)" -lt $((64 * 1024)) ] || fail "the downloaded image is not sparse"
    vol=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupVolume ss thin img)
    storagectl pool-refresh thin > /dev/null
    used=$(python3 -c "print(int(float('$(bus_get "$vol" "$IF_VOLUME" DataUsage)') * 1024))")
    info "thin: the 1 GiB image with 24 MiB of data takes $used MiB of the thin pool"
    ((used >= 20 && used <= 40)) || fail "the uploaded image takes $used MiB, expected about 24"
    rm -f /var/tmp/img.back
}

# ---------------------------------------------------------------- boot 2

storaged_thin_after_reboot() {
    local pool vol
    pool=$(state_need pool.thin)
    wait_pool_running "$pool" 90
    (($(bus_get "$pool" "$IF_POOL" ThinPoolSize) > 256 * MiB)) || fail "the extended thin pool shrank"
    vol=$(state_need vol.tv1)
    [ "$(bus_get "$vol" "$IF_VOLUME" Thin)" = true ] || fail "tv1 is no longer Thin"
    wait_block "$(state_need dev.tv1)" 30
    verify_pattern snapthin "$(state_need dev.tv1)"
    # A CoW snapshot keeps its origin; a thin one does not once another snapshot
    # of the same origin was merged into it (the origin's old thin device is gone).
    vol=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupVolume ss thin keepthick)
    [ "$(bus_get "$vol" "$IF_VOLUME" Origin)" != / ] || fail "keepthick lost its Origin"
    for kind in thick thin; do
        vol=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupVolume ss thin "keep$kind")
        verify_pattern "keep$kind" "$(bus_get "$vol" "$IF_VOLUME" Path)"
    done
    vol=$(state_need vol.renamed)
    [ "$(bus_get "$vol" "$IF_VOLUME" Name)" = renamed ] || fail "the renamed volume's object path changed"
    storagectl vol-download --no-progress thin img /var/tmp/img.back
    [ "$(sha256sum < /var/tmp/img.back | cut -c1-64)" = "$(state_need img.sha256)" ] \
        || fail "the uploaded image changed across the reboot"
    storagectl vol-list thin
    storagectl pool-info thin
}

# ---------------------------------------------------------------- benchmarks (printed, not asserted)

ms() { python3 -c "import time; print(int(time.monotonic() * 1000))"; }

# bench_pair WHAT N STORAGED_CMD BARE_CMD: the mean of N runs of each, one
# after the other, as "BENCH" lines in the log and on the host's output.
storaged_thin_bench() {
    local pool vg t0 t1 t2 i n=5 sd bare rate_sd rate_dd src dst
    pool=$(state_need pool.thin); vg=$(bus_get "$pool" "$IF_POOL" VolumeGroup)
    t0=$(ms)
    for i in $(seq $n); do thin_vol "$pool" "bs$i" 64 > /dev/null; done
    t1=$(ms)
    for i in $(seq $n); do lvcreate -q --type thin -V 64M --thinpool thinpool -n "bb$i" "$vg" > /dev/null; done
    t2=$(ms)
    sd=$(((t1 - t0) / n)); bare=$(((t2 - t1) / n))
    info "BENCH thin AllocateVolume ${sd} ms vs lvcreate -V ${bare} ms ($(python3 -c "print(round($sd / max($bare, 1), 2))")x)"
    t0=$(ms)
    for i in $(seq $n); do bus_call "$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupVolume ss thin "bs$i")" \
        "$IF_VOLUME" Snapshot 'sa{sv}' "bss$i" 0 > /dev/null; done
    t1=$(ms)
    for i in $(seq $n); do lvcreate -q -s -n "bbs$i" "$vg/bb$i" > /dev/null; done
    t2=$(ms)
    sd=$(((t1 - t0) / n)); bare=$(((t2 - t1) / n))
    info "BENCH thin Snapshot ${sd} ms vs lvcreate -s ${bare} ms ($(python3 -c "print(round($sd / max($bare, 1), 2))")x)"
    for i in $(seq $n); do
        lvremove -q -y "$vg/bbs$i" "$vg/bb$i" "$vg/bss$i" "$vg/bs$i" > /dev/null
    done
    # Clone of a 128 MiB thick volume full of data against dd of the same volume,
    # in the default pool (the thin pool's autoextend has taken most of this one).
    pool=$(bus_call "$SD_MANAGER" "$IF_MANAGER" LookupPool s default)
    src=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' bsrc $((128 * MiB)) 0)
    wait_block "$(bus_get "$src" "$IF_VOLUME" Path)" 30
    dd if=/dev/urandom of="$(bus_get "$src" "$IF_VOLUME" Path)" bs=4M count=32 oflag=direct status=none
    dst=$(bus_call "$pool" "$IF_POOL" AllocateVolume 'sta{sv}' bdst $((128 * MiB)) 0)
    wait_block "$(bus_get "$dst" "$IF_VOLUME" Path)" 30
    t0=$(ms)
    dd if="$(bus_get "$src" "$IF_VOLUME" Path)" of="$(bus_get "$dst" "$IF_VOLUME" Path)" bs=4M \
        iflag=direct oflag=direct status=none
    t1=$(ms)
    mapfile -t out < <(bus_call "$src" "$IF_VOLUME" Clone 'sa{sv}' bclone 0)
    wait_for 120 "the benchmark clone" job_completed "${out[1]}"
    t2=$(ms)
    rate_dd=$((128 * 1000 / (t1 - t0))); rate_sd=$((128 * 1000 / (t2 - t1)))
    info "BENCH clone ${rate_sd} MiB/s vs dd bs=4M oflag=direct ${rate_dd} MiB/s ($(python3 -c "print(round($rate_sd / max($rate_dd, 1), 2))")x)"
    # Upload of a 128 MiB image with data throughout against dd into the device.
    head -c $((128 * MiB)) /dev/urandom > /var/tmp/bench.raw
    t0=$(ms)
    dd if=/var/tmp/bench.raw of="$(bus_get "$dst" "$IF_VOLUME" Path)" bs=4M oflag=direct status=none
    t1=$(ms)
    storagectl vol-upload --no-progress default bdst /var/tmp/bench.raw 2> /dev/null > /dev/null
    t2=$(ms)
    rate_dd=$((128 * 1000 / (t1 - t0))); rate_sd=$((128 * 1000 / (t2 - t1)))
    info "BENCH upload ${rate_sd} MiB/s vs dd bs=4M oflag=direct ${rate_dd} MiB/s ($(python3 -c "print(round($rate_sd / max($rate_dd, 1), 2))")x)"
    for v in bsrc bdst bclone; do bus_call "$pool" "$IF_POOL" DeallocateVolume s "$v" > /dev/null; done
    rm -f /var/tmp/bench.raw
}
