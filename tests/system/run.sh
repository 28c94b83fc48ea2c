#!/bin/bash
# storaged VM lab: boot a Debian 12 guest under QEMU (software emulation),
# install storaged's .deb in it as a user would, check it, reboot on the
# same disks and check that everything came back. Then the shared stage: two
# guests at once on one shared raw disk (lvmlockd + sanlock), a shared pool
# made on host A and imported on host B, A killed hard, both booted again.
#
#   bash tests/system/run.sh [--rebuild] [--keep] [--build-only] [--only-shared]
#                            [--only CHECK...]
#
#   --rebuild     build the guest image again, even if cached
#   --keep        keep the run's disks (root overlay, data disk) after the run
#   --build-only  install host packages, build or find the image, build the .debs, stop
#   --only-shared skip boot 1 and boot 2: image, .debs, then the shared stage only
#   --only CHECK...  boot 1 with only the named checks (names as in plan.sh, e.g.
#                 faults.cancel) after those every check needs (lab.boot-finished,
#                 package.install, storaged.start, storaged.default-pool); no boot 2,
#                 no shared stage. For iterating on a check; the full run is the proof.
#
# Environment (all optional):
#   STORAGED_VMLAB_CACHE           cache folder (default /var/cache/storaged-vmlab)
#   STORAGED_VMLAB_BOOT1_TIMEOUT   seconds for boot 1: install + checks + poweroff (1200)
#   STORAGED_VMLAB_BOOT2_TIMEOUT   seconds for boot 2 (450)
#   STORAGED_VMLAB_BUILD_TIMEOUT   seconds for the image build (900)
#   STORAGED_VMLAB_LOCK_TIMEOUT    seconds to wait for another lab run to end (900)
#   STORAGED_VMLAB_MEM             guest memory in MiB (2048)
#   STORAGED_VMLAB_SHARED_TIMEOUT  seconds for the shared stage's first pair of boots (720)
#   STORAGED_VMLAB_SHARED2_TIMEOUT seconds for its second pair (A after the crash, B rebooted) (420)
#   STORAGED_VMLAB_SHARED_MEM      memory of each shared-stage guest in MiB (1024)
#   STORAGED_VMLAB_ONLY            the same as --only, names separated by spaces
#
# Output: one `PASS name` / `FAIL name: reason` line per check, then
# `N passed, M failed` alone on a line. Exit status 0 only when every check
# passed. The last run's logs stay in $CACHE/last-run/.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${STORAGED_VMLAB_CACHE:-/var/cache/storaged-vmlab}
BOOT1_TIMEOUT=${STORAGED_VMLAB_BOOT1_TIMEOUT:-1200}
BOOT2_TIMEOUT=${STORAGED_VMLAB_BOOT2_TIMEOUT:-450}
BUILD_TIMEOUT=${STORAGED_VMLAB_BUILD_TIMEOUT:-900}
LOCK_TIMEOUT=${STORAGED_VMLAB_LOCK_TIMEOUT:-900}
MEM=${STORAGED_VMLAB_MEM:-2048}
SHARED_TIMEOUT=${STORAGED_VMLAB_SHARED_TIMEOUT:-720}
SHARED2_TIMEOUT=${STORAGED_VMLAB_SHARED2_TIMEOUT:-420}
SHARED_MEM=${STORAGED_VMLAB_SHARED_MEM:-1024}
DATA_DISK_SIZE=256M
SHARED_DISK_SIZE=2G
IMAGES_KEPT=3
LOCK_FILE=/run/lock/storaged-vmlab.lock

REBUILD=0 KEEP=0 BUILD_ONLY=0 ONLY_SHARED=0
# Checks of boot 1 to run alone (--only, STORAGED_VMLAB_ONLY); empty: the whole lab.
read -r -a ONLY <<< "${STORAGED_VMLAB_ONLY:-}"
in_only=0
for arg in "$@"; do
    case "$arg" in
        --rebuild) REBUILD=1 ;;
        --keep) KEEP=1 ;;
        --build-only) BUILD_ONLY=1 ;;
        --only-shared) ONLY_SHARED=1 ;;
        --only) in_only=1; continue ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "run.sh: unknown argument: $arg" >&2; exit 2 ;;
        *) if [ "$in_only" = 1 ]; then ONLY+=("$arg"); continue; fi
           echo "run.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
    in_only=0
done
if [ "$in_only" = 1 ] && [ ${#ONLY[@]} -eq 0 ]; then
    echo "run.sh: --only needs the names of boot 1's checks to run" >&2; exit 2
fi
if [ ${#ONLY[@]} -gt 0 ] && [ "$ONLY_SHARED" = 1 ]; then
    echo "run.sh: --only (boot 1's checks) and --only-shared exclude each other" >&2; exit 2
fi

# ---------------------------------------------------------------- utilities

T0=$SECONDS
log() { printf '[vmlab %4ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() { log "error: $*" >&2; exit 1; }

# Mirror and registry host names must never reach a file (or this output):
# every URL's scheme://host is blanked in what apt, mmdebstrap and pip print.
redact() { sed -u -E 's#[A-Za-z][A-Za-z0-9+.-]*://[^/[:space:]]+#<url>#g'; }

# Processes this script started and must end, by their id (each is the leader
# of its own process group, started with setsid).
BG_PID=
QEMU_PID=
declare -A SH_PID=()   # the shared stage's QEMUs, by phase
RUN=
BUILD_TMP=

alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# Ends process group $1 (TERM, then KILL after $2 seconds) and reaps it.
end_group() {
    local pid=$1 grace=${2:-10} i
    [ -n "$pid" ] || return 0
    if alive "$pid"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < grace * 5; i++)); do alive "$pid" || break; sleep 0.2; done
        if alive "$pid"; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# run_bounded NAME TIMEOUT LOGFILE CMD...: runs CMD in its own process group,
# output (redacted) to LOGFILE, and ends it if it outlives TIMEOUT seconds.
# Returns CMD's status, or 124 on timeout.
run_bounded() {
    local name=$1 limit=$2 logfile=$3 start=$SECONDS rc
    shift 3
    setsid "$@" > >(redact >> "$logfile") 2>&1 < /dev/null &
    BG_PID=$!
    while alive "$BG_PID"; do
        if ((SECONDS - start >= limit)); then
            log "$name: no end after ${limit}s, stopping it"
            end_group "$BG_PID" 10
            BG_PID=
            return 124
        fi
        sleep 0.5
    done
    rc=0
    wait "$BG_PID" || rc=$?
    BG_PID=
    return "$rc"
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    end_group "$QEMU_PID" 10
    local phase
    for phase in "${!SH_PID[@]}"; do end_group "${SH_PID[$phase]}" 10; done
    end_group "$BG_PID" 30
    [ -n "$BUILD_TMP" ] && rm -rf "$BUILD_TMP"
    if [ -n "$RUN" ] && [ -d "$RUN" ]; then
        # Keep the logs of the last run, drop its big files.
        if [ "$KEEP" != 1 ]; then
            rm -f "$RUN"/*.qcow2 "$RUN"/*.raw
        fi
        rm -rf "$RUN/share/src.tar" "$RUN/share/debs"
        rm -rf "$CACHE/last-run"
        mv "$RUN" "$CACHE/last-run" 2>/dev/null || rm -rf "$RUN"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM HUP

# ---------------------------------------------------------------- host packages

host_packages() {
    local -a missing_plain=() missing_norec=()
    command -v mmdebstrap >/dev/null || missing_plain+=(mmdebstrap)
    command -v qemu-system-x86_64 >/dev/null || missing_norec+=(qemu-system-x86)
    command -v qemu-img >/dev/null || missing_norec+=(qemu-utils)
    command -v mkfs.ext4 >/dev/null || missing_norec+=(e2fsprogs)
    command -v unshare >/dev/null || missing_norec+=(util-linux)
    command -v git >/dev/null || missing_norec+=(git)
    command -v python3 >/dev/null || missing_norec+=(python3)
    if ! python3 -m pip --version >/dev/null 2>&1; then missing_norec+=(python3-pip); fi
    [ ${#missing_plain[@]} -eq 0 ] && [ ${#missing_norec[@]} -eq 0 ] && return 0

    log "host packages to install: ${missing_plain[*]} ${missing_norec[*]}"
    local hlog="$CACHE/host-apt.log" rc=0
    : > "$hlog"
    export DEBIAN_FRONTEND=noninteractive
    run_bounded "apt-get update" 300 "$hlog" apt-get update -q || rc=$?
    [ "$rc" = 0 ] || { tail -20 "$hlog" >&2; die "apt-get update failed ($rc)"; }
    if [ ${#missing_norec[@]} -gt 0 ]; then
        run_bounded "apt-get install" 600 "$hlog" \
            apt-get install -y -q --no-install-recommends "${missing_norec[@]}" || rc=$?
    fi
    if [ "$rc" = 0 ] && [ ${#missing_plain[@]} -gt 0 ]; then
        run_bounded "apt-get install" 600 "$hlog" apt-get install -y -q "${missing_plain[@]}" || rc=$?
    fi
    [ "$rc" = 0 ] || { tail -20 "$hlog" >&2; die "apt-get install failed ($rc), see $hlog"; }
}

# ---------------------------------------------------------------- image

image_key() {
    # Every file of image/ (the build script, the package list, the agent) is
    # an input; so is the format of the cache entry.
    (
        cd "$HERE/image"
        echo "storaged-vmlab image v1"
        for f in $(ls -A | LC_ALL=C sort); do
            echo "== $f"
            cat "$f"
        done
    ) | sha256sum | cut -c1-16
}

IMAGE=
IMAGE_STATUS=
ensure_image() {
    local key
    key=$(image_key)
    IMAGE="$CACHE/images/$key"
    if [ "$REBUILD" = 1 ] && [ -d "$IMAGE" ]; then
        log "image $key: --rebuild, dropping the cached one"
        rm -rf "$IMAGE"
    fi
    if [ -f "$IMAGE/root.raw" ] && [ -f "$IMAGE/vmlinuz" ] && [ -f "$IMAGE/initrd.img" ]; then
        IMAGE_STATUS="cached ($IMAGE)"
        log "image $key: cached"
        touch "$IMAGE"
        return 0
    fi
    mkdir -p "$CACHE/images"
    BUILD_TMP=$(mktemp -d "$CACHE/images/.build-$key.XXXXXX")
    local blog="$BUILD_TMP/build.log" rc=0 start=$SECONDS
    log "image $key: building (log: $IMAGE/build.log)"
    run_bounded "image build" "$BUILD_TIMEOUT" "$blog" bash "$HERE/image/build.sh" "$BUILD_TMP" || rc=$?
    if [ "$rc" != 0 ]; then
        tail -30 "$blog" >&2
        mkdir -p "$CACHE/failed-build"
        cp "$blog" "$CACHE/failed-build/build.log"
        die "image build failed ($rc); log kept in $CACHE/failed-build/build.log"
    fi
    rm -rf "$IMAGE"
    mv "$BUILD_TMP" "$IMAGE"
    BUILD_TMP=
    IMAGE_STATUS="built in $((SECONDS - start))s ($IMAGE)"
    log "image $key: built in $((SECONDS - start))s, $(du -sh --apparent-size "$IMAGE/root.raw" | cut -f1) raw, $(du -sh "$IMAGE/root.raw" | cut -f1) used"

    # Keep the few most recently used images only.
    local old
    ls -1dt "$CACHE"/images/*/ 2>/dev/null | tail -n +$((IMAGES_KEPT + 1)) | while read -r old; do
        log "dropping old image $(basename "$old")"
        rm -rf "$old"
    done
}

# ---------------------------------------------------------------- packages

# The guest installs storaged from its .deb: the build under test and, for the
# upgrade check, the same tree built as the previous version (VERSION~lab1).
DEBS_STATUS=
build_debs() {
    local version start=$SECONDS
    version=$(sed -n '1s/^storaged (\([^)]*\)).*/\1/p' "$REPO/debian/changelog")
    rm -f "$REPO"/dist/storaged_*_all.deb
    run_bounded "make deb (${version}~lab1)" 600 "$CACHE/deb.log" \
        make -C "$REPO" deb DEB_VERSION="${version}~lab1" || { tail -30 "$CACHE/deb.log" >&2; die "make deb failed"; }
    run_bounded "make deb ($version)" 600 "$CACHE/deb.log" \
        make -C "$REPO" deb || { tail -30 "$CACHE/deb.log" >&2; die "make deb failed"; }
    DEBS_STATUS="built in $((SECONDS - start))s: $(cd "$REPO/dist" && ls storaged_*_all.deb | tr '\n' ' ')"
    log "packages: $DEBS_STATUS"
}

# ---------------------------------------------------------------- the run

# The working tree as it is: tracked files plus untracked, not ignored ones.
snapshot_source() {
    local out=$1
    if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (
            cd "$REPO"
            git ls-files -z --cached --others --exclude-standard \
                | while IFS= read -r -d '' f; do
                    if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
                done \
                | tar --null --no-recursion -T - -cf "$out"
        )
    else
        tar -C "$REPO" --exclude=.git --exclude=.venv --exclude=.run -cf "$out" .
    fi
}

prepare_run() {
    RUN=$(mktemp -d "$CACHE/run.XXXXXX")
    mkdir -p "$RUN/share/results" "$RUN/share/debs"
    cp -r "$HERE/guest" "$RUN/share/guest"
    cp "$REPO"/dist/storaged_*_all.deb "$RUN/share/debs/"
    snapshot_source "$RUN/share/src.tar"
    if [ ${#ONLY[@]} -gt 0 ]; then
        printf '%s\n' "${ONLY[@]}" > "$RUN/share/only"
        log "only: boot 1 with ${ONLY[*]} (and what they need); no boot 2, no shared stage"
    fi
    log "source: $(tar -tf "$RUN/share/src.tar" | wc -l) files of the working tree"
    # The cached image is only ever a read-only backing file.
    if [ "$ONLY_SHARED" != 1 ]; then
        qemu-img create -q -f qcow2 -F raw -b "$IMAGE/root.raw" "$RUN/root.qcow2"
        qemu-img create -q -f qcow2 "$RUN/data.qcow2" "$DATA_DISK_SIZE"
    fi
}

declare -A BOOT_WALL BOOT_READY BOOT_STATE
# boot PHASE TIMEOUT: one QEMU run; the guest runs the PHASE checks and powers off.
boot() {
    local phase=$1 limit=$2 start=$SECONDS printed=0 total ready=
    local console="$RUN/$phase.console.log" serial="$RUN/$phase.serial.log"
    echo "$phase" > "$RUN/share/phase"
    : > "$console"
    : > "$serial"
    log "$phase: starting QEMU (timeout ${limit}s)"
    setsid qemu-system-x86_64 \
        -name "storaged-vmlab-$phase" \
        -accel tcg,thread=multi -cpu max -smp 2 -m "$MEM" \
        -nodefaults -no-user-config -display none -no-reboot \
        -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 panic=-1" \
        -drive "file=$RUN/root.qcow2,format=qcow2,if=virtio" \
        -drive "file=$RUN/data.qcow2,format=qcow2,if=virtio" \
        -virtfs "local,path=$RUN/share,mount_tag=lab,security_model=none,id=lab" \
        -device virtio-rng-pci \
        -serial "file:$console" -serial "file:$serial" \
        > "$RUN/$phase.qemu.log" 2>&1 < /dev/null &
    QEMU_PID=$!
    BOOT_STATE[$phase]="timed out after ${limit}s"
    while alive "$QEMU_PID"; do
        # Show the guest's progress lines as they come (complete lines only).
        total=$(wc -l < "$serial")
        if ((total > printed)); then
            sed -n "$((printed + 1)),${total}p" "$serial" | tr -d '\r' | sed "s/^/  [$phase] /"
            if [ -z "$ready" ] && sed -n "$((printed + 1)),${total}p" "$serial" | grep -q '^LAB ready'; then
                ready=$((SECONDS - start))
            fi
            printed=$total
        fi
        if ((SECONDS - start >= limit)); then
            log "$phase: timed out after ${limit}s, stopping QEMU"
            end_group "$QEMU_PID" 5
            QEMU_PID=
            break
        fi
        sleep 0.5
    done
    if [ -n "$QEMU_PID" ]; then
        local rc=0
        wait "$QEMU_PID" || rc=$?
        QEMU_PID=
        BOOT_STATE[$phase]="exited $rc"
        [ "$rc" = 0 ] || { log "$phase: QEMU exited with status $rc:"; tail -5 "$RUN/$phase.qemu.log" >&2; }
    fi
    total=$(wc -l < "$serial")
    if ((total > printed)); then
        sed -n "$((printed + 1)),${total}p" "$serial" | tr -d '\r' | sed "s/^/  [$phase] /"
    fi
    BOOT_WALL[$phase]=$((SECONDS - start))
    BOOT_READY[$phase]=${ready:-?}
    log "$phase: QEMU ran ${BOOT_WALL[$phase]}s"
}

# The results of PHASE, as PASS/FAIL lines: the guest's results file (9p),
# or what reached the second serial port if the share has none, plus one
# host-side check that the guest finished its suite in time.
phase_results() {
    local phase=$1
    local file="$RUN/share/results/$phase.results"
    if [ -s "$file" ]; then
        grep -E '^(PASS|FAIL) ' "$file" || true
    else
        tr -d '\r' < "$RUN/$phase.serial.log" | grep -E '^(PASS|FAIL) ' || true
    fi
    if [ -f "$RUN/share/results/$phase.done" ]; then
        echo "PASS $phase.completed"
    else
        local why="the guest did not finish its checks (QEMU ${BOOT_STATE[$phase]:-not run})" current
        current=$(grep '^=== ' "$RUN/share/results/$phase.log" 2> /dev/null | tail -n 1)
        case "$current" in
            *": status "*|"") ;;
            *) why="$why, in check ${current#=== }" ;;
        esac
        echo "FAIL $phase.completed: $why; console: $CACHE/last-run/$phase.console.log"
    fi
}

# PHASE's poweroff, from the guest's console: it powered off with no stop job
# left hanging, and after boot 2 (whose plan leaves the network pools up) the
# shutdown unit stopped each network pool while its server and the network
# were still there.
shutdown_results() {
    local phase=$1 text pool hung
    [ -f "$RUN/share/results/$phase.done" ] || return 0  # phase_results says why
    text=$(tr -d '\r' < "$RUN/$phase.console.log" | sed 's/\x1b\[[0-9;]*m//g')
    if ! grep -q 'reboot: Power down' <<< "$text"; then
        echo "FAIL $phase.shutdown: the guest did not power off (QEMU ${BOOT_STATE[$phase]:-?}); console: $CACHE/last-run/$phase.console.log"
        return
    fi
    hung=$(grep -m1 -E 'A stop job is running|Failed unmounting.*storaged|Failed to deactivate' <<< "$text" || true)
    if [ -n "$hung" ]; then
        echo "FAIL $phase.shutdown: ${hung:0:200}"
        return
    fi
    if [ "$phase" = boot2 ]; then
        for pool in netiscsi netnfs; do
            if ! grep -qE "(^|: )Pool $pool stopped$" <<< "$text"; then
                echo "FAIL $phase.shutdown: storaged-network-pools.service did not stop pool $pool at poweroff"
                return
            fi
        done
    fi
    # The shared stage's hosts power off with the shared pool running (and, on
    # B after the failover, a volume active): the same unit must stop it, or
    # sanlock and lvmlockd hold the poweroff for minutes. (PHASE.pool-up: the
    # guest saw the pool running; without it an earlier FAIL says why.)
    case "$phase" in
        shared-*)
            [ -f "$RUN/share/results/$phase.pool-up" ] || { echo "PASS $phase.shutdown"; return; }
            if ! grep -qE "(^|: )Pool shared1 stopped$" <<< "$text"; then
                echo "FAIL $phase.shutdown: no 'Pool shared1 stopped' on the console: storaged-network-pools.service did not stop the shared pool at poweroff (took ${SH_OFF[$phase]:-?}s from 'LAB powering off' to QEMU's exit)"
                return
            fi ;;
    esac
    echo "PASS $phase.shutdown"
}

# ---------------------------------------------------------------- the shared stage

# Two guests at the same time (host A and host B), each on its own fresh qcow2
# overlay of the image, both on ONE raw disk (share-rw) and the same 9p share.
# A guest learns its phase and host from the kernel command line (lab.phase=,
# lab.host=); cross-host barriers are files under share/sync/. Every disk has
# an explicit PCI address: root 0x3 (/dev/vda), shared disk 0x5 (/dev/vdb,
# /dev/disk/by-id/virtio-shared0); with auto-assigned slots the shared disk
# can come first and the initramfs stops ("ALERT! /dev/vda does not exist").
#
#   pair 1: shared-a + shared-b. When A's plan has written sync/a-failover-ready
#           (it holds a volume exclusively), QEMU A is killed with SIGKILL and
#           sync/a-gone says "killed"; B takes the volume over, checks, powers off.
#   pair 2: shared-a2 (A after the crash) + shared-b2 (B rebooted), in parallel.
declare -A SH_START=() SH_PRINTED=() SH_READY=() SH_LIMIT=() SH_HOST=() SH_OFF_SEEN=() SH_OFF=()
SHARED_WALL=
SHARED_KILL=

# shared_start PHASE HOST OVERLAY LIMIT
shared_start() {
    local phase=$1 host=$2 root=$3 limit=$4
    local console="$RUN/$phase.console.log" serial="$RUN/$phase.serial.log"
    : > "$console"
    : > "$serial"
    rm -f "$RUN/share/sync/$host-gone"
    log "$phase: starting QEMU, host $host (timeout ${limit}s)"
    setsid qemu-system-x86_64 \
        -name "storaged-vmlab-$phase" \
        -accel tcg,thread=multi -cpu max -smp 2 -m "$SHARED_MEM" \
        -nodefaults -no-user-config -display none -no-reboot \
        -kernel "$IMAGE/vmlinuz" -initrd "$IMAGE/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 panic=-1 lab.phase=$phase lab.host=$host" \
        -drive "file=$root,format=qcow2,if=none,id=root" \
        -device virtio-blk-pci,drive=root,addr=0x3 \
        -drive "file=$RUN/shared.raw,if=none,id=sh,format=raw,cache=none" \
        -device virtio-blk-pci,drive=sh,share-rw=on,serial=shared0,addr=0x5 \
        -fsdev "local,id=labfs,path=$RUN/share,security_model=none" \
        -device virtio-9p-pci,fsdev=labfs,mount_tag=lab,addr=0x6 \
        -device virtio-rng-pci,addr=0x7 \
        -serial "file:$console" -serial "file:$serial" \
        > "$RUN/$phase.qemu.log" 2>&1 < /dev/null &
    SH_PID[$phase]=$!
    SH_START[$phase]=$SECONDS
    SH_PRINTED[$phase]=0
    SH_READY[$phase]=
    SH_LIMIT[$phase]=$limit
    SH_HOST[$phase]=$host
    SH_OFF_SEEN[$phase]=
    BOOT_STATE[$phase]="timed out after ${limit}s"
}

# shared_show PHASE: the guest's new progress lines (complete lines only).
shared_show() {
    local phase=$1 serial="$RUN/$1.serial.log" total new
    total=$(wc -l < "$serial")
    ((total > SH_PRINTED[$phase])) || return 0
    new=$(sed -n "$((SH_PRINTED[$phase] + 1)),${total}p" "$serial" | tr -d '\r')
    sed "s/^/  [$phase] /" <<< "$new"
    if [ -z "${SH_READY[$phase]}" ] && grep -q '^LAB ready' <<< "$new"; then
        SH_READY[$phase]=$((SECONDS - SH_START[$phase]))
    fi
    if [ -z "${SH_OFF_SEEN[$phase]}" ] && grep -q '^LAB powering off' <<< "$new"; then
        SH_OFF_SEEN[$phase]=$SECONDS
    fi
    SH_PRINTED[$phase]=$total
}

# shared_reap PHASE HOW: QEMU of PHASE has ended (or is ended now, HOW =
# killed|timeout); records its times and tells the other host (sync/HOST-gone).
shared_reap() {
    local phase=$1 how=$2 pid=${SH_PID[$1]} rc=0
    case "$how" in
        killed) kill -KILL -- "-$pid" 2> /dev/null || kill -KILL "$pid" 2> /dev/null || true ;;
        timeout) end_group "$pid" 5 ;;
    esac
    wait "$pid" 2> /dev/null || rc=$?
    unset "SH_PID[$phase]"
    case "$how" in
        killed) BOOT_STATE[$phase]="killed with SIGKILL (planned)" ;;
        timeout) BOOT_STATE[$phase]="timed out after ${SH_LIMIT[$phase]}s" ;;
        *) BOOT_STATE[$phase]="exited $rc"
           [ "$rc" = 0 ] || { log "$phase: QEMU exited with status $rc:"; tail -5 "$RUN/$phase.qemu.log" >&2; } ;;
    esac
    echo "$how" > "$RUN/share/sync/${SH_HOST[$phase]}-gone"
    shared_show "$phase"
    BOOT_WALL[$phase]=$((SECONDS - SH_START[$phase]))
    BOOT_READY[$phase]=${SH_READY[$phase]:-?}
    if [ -n "${SH_OFF_SEEN[$phase]}" ] && [ "$how" = exited ]; then
        SH_OFF[$phase]=$((SECONDS - SH_OFF_SEEN[$phase]))
    fi
    log "$phase: QEMU ran ${BOOT_WALL[$phase]}s, ${BOOT_STATE[$phase]}"
}

# shared_watch PHASE...: shows progress until every QEMU of the pair has
# ended; kills A when its plan asks for it (the failover check).
shared_watch() {
    local phase running
    while :; do
        running=0
        for phase in "$@"; do
            [ -n "${SH_PID[$phase]:-}" ] || continue
            shared_show "$phase"
            if ! alive "${SH_PID[$phase]}"; then
                shared_reap "$phase" exited
            elif [ "$phase" = shared-a ] && [ -e "$RUN/share/sync/a-failover-ready" ]; then
                log "$phase: A holds the failover volume: killing its QEMU (SIGKILL)"
                shared_reap "$phase" killed
                SHARED_KILL=$SECONDS
            elif ((SECONDS - SH_START[$phase] >= SH_LIMIT[$phase])); then
                log "$phase: timed out after ${SH_LIMIT[$phase]}s, stopping QEMU"
                shared_reap "$phase" timeout
            else
                running=1
            fi
        done
        ((running)) || break
        sleep 0.2
    done
}

shared_stage() {
    local start=$SECONDS
    mkdir -p "$RUN/share/sync"
    qemu-img create -q -f qcow2 -F raw -b "$IMAGE/root.raw" "$RUN/root-a.qcow2"
    qemu-img create -q -f qcow2 -F raw -b "$IMAGE/root.raw" "$RUN/root-b.qcow2"
    rm -f "$RUN/shared.raw"
    truncate -s "$SHARED_DISK_SIZE" "$RUN/shared.raw"
    log "shared: two guests, one ${SHARED_DISK_SIZE} raw disk"
    shared_start shared-a a "$RUN/root-a.qcow2" "$SHARED_TIMEOUT"
    shared_start shared-b b "$RUN/root-b.qcow2" "$SHARED_TIMEOUT"
    shared_watch shared-a shared-b
    # A comes back after its crash while B reboots (check 8).
    if [ -z "$SHARED_KILL" ]; then
        log "shared: A was not killed (its plan did not reach the failover): no second pair"
    elif [ ! -f "$RUN/share/results/shared-b.done" ]; then
        log "shared: B did not complete its checks: no second pair"
    else
        shared_start shared-a2 a "$RUN/root-a.qcow2" "$SHARED2_TIMEOUT"
        shared_start shared-b2 b "$RUN/root-b.qcow2" "$SHARED2_TIMEOUT"
        shared_watch shared-a2 shared-b2
    fi
    SHARED_WALL=$((SECONDS - start))
    log "shared: stage took ${SHARED_WALL}s"
}

# The shared stage's PASS/FAIL lines: each phase's guest results; a phase not
# run is a FAIL; every poweroff (not A's crash) from the console.
shared_results() {
    local phase
    for phase in shared-a shared-b shared-a2 shared-b2; do
        if [ -z "${BOOT_WALL[$phase]:-}" ]; then
            echo "FAIL $phase.completed: not run (see the log above: the first pair did not reach the failover)"
            continue
        fi
        phase_results "$phase"
        [ "$phase" = shared-a ] || shutdown_results "$phase"
    done
}

# ---------------------------------------------------------------- main

[ "$(id -u)" = 0 ] || die "run as root (QEMU, mmdebstrap and apt need it)"
mkdir -p "$CACHE" /run/lock
exec 9> "$LOCK_FILE"
if ! flock -n 9; then
    log "another VM lab run holds $LOCK_FILE; waiting up to ${LOCK_TIMEOUT}s"
    flock -w "$LOCK_TIMEOUT" 9 || die "another VM lab run is still going"
fi
log "cache: $CACHE"

t=$SECONDS
host_packages
T_HOST=$((SECONDS - t))
t=$SECONDS
ensure_image
T_IMAGE=$((SECONDS - t))
build_debs
if [ "$BUILD_ONLY" = 1 ]; then
    log "build only: image $IMAGE_STATUS; packages $DEBS_STATUS"
    exit 0
fi
prepare_run

if [ "$ONLY_SHARED" != 1 ]; then
    boot boot1 "$BOOT1_TIMEOUT"
    if [ ${#ONLY[@]} -gt 0 ]; then
        :  # --only: boot 1's chosen checks, nothing else
    elif [ -f "$RUN/share/results/boot1.done" ]; then
        boot boot2 "$BOOT2_TIMEOUT"
    else
        log "boot1 did not complete: boot2 is not run"
    fi
fi
# The shared stage needs nothing of boot 1 and 2 (fresh overlays): it runs
# whatever they gave.
[ ${#ONLY[@]} -gt 0 ] || shared_stage

# --only: each named check ran (a name that is not in boot 1's plan is a FAIL).
only_results() {
    local name
    for name in "${ONLY[@]}"; do
        grep -qE "^(PASS|FAIL) boot1\.$name(:|$)" "$RUN/share/results/boot1.results" 2> /dev/null \
            || echo "FAIL only.$name: no result for boot1.$name (not in boot 1's plan, or not reached)"
    done
}

results=$(
    if [ ${#ONLY[@]} -gt 0 ]; then
        phase_results boot1
        shutdown_results boot1
        only_results
    elif [ "$ONLY_SHARED" != 1 ]; then
        phase_results boot1
        shutdown_results boot1
        if [ -n "${BOOT_WALL[boot2]:-}" ]; then
            phase_results boot2
            shutdown_results boot2
        else
            echo "FAIL boot2.completed: not run, boot1 did not complete"
        fi
    fi
    [ ${#ONLY[@]} -gt 0 ] || shared_results
)
passed=$(grep -c '^PASS ' <<< "$results" || true)
failed=$(grep -c '^FAIL ' <<< "$results" || true)

guest_time() {
    local v
    v=$(sed -n "s/^$2=//p" "$RUN/share/results/$1.times" 2> /dev/null || true)
    echo "${v:-?}"
}
echo
echo "== times"
echo "host packages: ${T_HOST}s"
echo "image: ${T_IMAGE}s, $IMAGE_STATUS"
for phase in boot1 boot2 shared-a shared-b shared-a2 shared-b2; do
    [ -n "${BOOT_WALL[$phase]:-}" ] || continue
    off=
    [ -z "${SH_OFF[$phase]:-}" ] || off="; poweroff ${SH_OFF[$phase]}s (host)"
    echo "$phase: QEMU ${BOOT_WALL[$phase]}s in all; boot to ready ${BOOT_READY[$phase]}s (host)," \
        "$(guest_time "$phase" boot)s (guest uptime); suite $(guest_time "$phase" suite)s (guest)$off"
done
[ -z "$SHARED_WALL" ] || echo "shared stage: ${SHARED_WALL}s wall"
echo "total: $((SECONDS - T0))s"
echo "logs: $CACHE/last-run/ (*.console.log, share/results/*.log)"
bench=$(cat "$RUN"/shared-*.serial.log 2> /dev/null | tr -d '\r' | grep '^INFO BENCH ' || true)
if [ -n "$bench" ]; then
    echo
    echo "== shared-stage benchmarks (figures, not pass/fail)"
    echo "$bench"
fi
echo
echo "== results"
echo "$results"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
