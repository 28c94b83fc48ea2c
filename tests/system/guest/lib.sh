# storaged VM lab, guest side: the check runner and the helpers every check
# may use. Sourced by agent.sh, and again in each check's own shell.
#
# A check is a shell function (in checks/*.sh) listed in plan.sh. It runs in
# its own bash with `set -eEuo pipefail`, under `timeout`. It passes by
# returning 0; it fails with `fail "reason"`, or with any failing command (the
# reason is then that command and its status). Its output goes to the log.

CHECK_TIMEOUT=${CHECK_TIMEOUT:-90}
PASSED=${PASSED:-0}
FAILED=${FAILED:-0}

# A line for the host (second serial port) and for the log.
serial() {
    echo "$*"
    echo "$*" >&7 2> /dev/null || true
}

# A line worth seeing in the host's output (e.g. critical-chain).
info() { serial "INFO $*"; }

# Ends the current check with a reason.
fail() {
    echo "FAIL: $*"
    printf '%s\n' "$*" > "$LAB_REASON"
    exit 1
}

record() {
    echo "$1" >> "$RESULTS/$PHASE.results"
    serial "$1"
}

# The most telling last line of a failed command's output: not a command
# trace, nor make's own bookkeeping around the real error.
last_words() {
    grep -Ev '^\+ |^make(\[[0-9]+\])?: (\*\*\*|Entering directory|Leaving directory)' "$1" \
        | tail -n 1 | head -c 300
}

# check NAME FUNCTION [TIMEOUT]: runs one check and records PASS or FAIL.
# run.sh --only: boot 1 runs only the checks named in $LAB/only (LAB_ONLY) and
# those every check needs.
ONLY_NEEDED="lab.boot-finished package.install storaged.start storaged.default-pool"
only_selected() {
    [ -z "${LAB_ONLY:-}" ] && return 0
    case " $ONLY_NEEDED $LAB_ONLY " in *" $1 "*) return 0 ;; esac
    return 1
}

check() {
    local name="$PHASE.$1" fn=$2 limit=${3:-$CHECK_TIMEOUT} rc out reason start
    only_selected "$1" || return 0
    LAB_REASON=$(mktemp)
    out=$(mktemp)
    start=$SECONDS
    echo
    echo "=== $name ($fn, timeout ${limit}s)"
    LAB_REASON=$LAB_REASON LAB_CHECK=$1 timeout -k 5 "$limit" bash -c '
        . "$GUEST/lib.sh"
        for f in "$GUEST"/checks/*.sh; do . "$f"; done
        set -eEuo pipefail
        trap '\''rc=$?; [ -s "$LAB_REASON" ] || [ -s "$LAB_REASON.cmd" ] || printf "%s exited with status %s (line %s)\n" "$BASH_COMMAND" "$rc" "$LINENO" > "$LAB_REASON.cmd"'\'' ERR
        "$1"
    ' check "$fn" > "$out" 2>&1 < /dev/null
    rc=$?
    cat "$out"
    if [ "$rc" = 0 ]; then
        PASSED=$((PASSED + 1))
        record "PASS $name"
    else
        if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            reason="timed out after ${limit}s"
        elif [ -s "$LAB_REASON" ]; then
            reason=$(head -c 400 "$LAB_REASON" | tr '\n' ' ' | sed 's/ *$//')
        elif [ -s "$LAB_REASON.cmd" ]; then
            # A command failed: name it, with the last line it printed.
            reason="$(head -c 200 "$LAB_REASON.cmd" | tr '\n' ' ' | sed 's/ *$//'); last output: $(last_words "$out")"
        else
            reason="exit status $rc; last output: $(tail -n 1 "$out" | head -c 300)"
        fi
        FAILED=$((FAILED + 1))
        record "FAIL $name: $reason"
        # What the daemon said around the failure, for whoever reads the log.
        echo "--- journal of storaged.service (last 40 lines) after $name failed"
        journalctl -b -u storaged.service --no-pager -n 40 -o short-monotonic 2>&1 || true
    fi
    echo "=== $name: status $rc after $((SECONDS - start))s"
    # The shared stage: the other host's waits for this check's barriers end
    # now rather than at their timeout (see peer_wait in checks/shared.sh).
    if [ -n "${LAB_HOST:-}" ]; then echo "$rc" > "$SYNC/$LAB_HOST.$1.end"; fi
    rm -f "$LAB_REASON" "$LAB_REASON.cmd" "$out"
}

# ---------------------------------------------------------------- waiting

# wait_for SECONDS WHAT CMD...: polls CMD until it succeeds.
wait_for() {
    local limit=$1 what=$2 start=$SECONDS
    shift 2
    until "$@" > /dev/null 2>&1; do
        ((SECONDS - start < limit)) || fail "timed out after ${limit}s waiting for $what"
        sleep 0.5
    done
}

wait_block() { wait_for "${2:-30}" "block device $1" test -b "$1"; }

# ---------------------------------------------------------------- state kept across the reboot

state_set() { printf '%s\n' "$2" > "$STATE/$1"; }
state_get() { cat "$STATE/$1" 2> /dev/null || true; }
# state_need KEY: the value, or the check fails (an earlier check did not record it).
state_need() {
    [ -s "$STATE/$1" ] || fail "no '$1' recorded by an earlier check (it failed or did not run)"
    cat "$STATE/$1"
}

# ---------------------------------------------------------------- data patterns

# write_pattern KEY DEVICE: 1 MiB of random data to the start of DEVICE; the
# data and its sha256 stay in $STATE (the persistent root) as KEY.*.
write_pattern() {
    local key=$1 dev=$2
    head -c 1048576 /dev/urandom > "$STATE/$key.pattern"
    sha256sum < "$STATE/$key.pattern" | cut -c1-64 > "$STATE/$key.sha256"
    dd if="$STATE/$key.pattern" of="$dev" bs=1M count=1 oflag=direct conv=fsync status=none
    sync
}

# verify_pattern KEY DEVICE: the first MiB of DEVICE has the recorded sha256.
verify_pattern() {
    local key=$1 dev=$2 want got
    want=$(state_need "$key.sha256")
    got=$(dd if="$dev" bs=1M count=1 iflag=direct status=none | sha256sum | cut -c1-64)
    [ "$got" = "$want" ] || fail "first MiB of $dev: sha256 $got, expected $want"
    echo "$dev: sha256 $got as written"
}

# ---------------------------------------------------------------- D-Bus (busctl)

SD_BUS=org.storaged.Storaged1
SD_ROOT=/org/storaged/Storaged1
SD_MANAGER=/org/storaged/Storaged1/Manager
IF_MANAGER=org.storaged.Storaged1.Manager
IF_POOL=org.storaged.Storaged1.Pool
IF_VOLUME=org.storaged.Storaged1.Volume
IF_JOB=org.storaged.Storaged1.Job

# Prints a busctl --json=short reply: a single value as is, an array one
# element per line, booleans as true/false.
bus_json_values() {
    python3 -c '
import json, sys
text = sys.stdin.read().strip()
if not text:
    sys.exit(0)
data = json.loads(text)["data"]
def show(v):
    if isinstance(v, bool):
        print("true" if v else "false")
    elif isinstance(v, (str, int, float)):
        print(v)
    else:
        print(json.dumps(v))
if isinstance(data, list) and len(data) == 1 and sys.argv[1] == "call":
    data = data[0]
if isinstance(data, list):
    for v in data:
        show(v)
else:
    show(data)
' "$1"
}

# bus_call PATH INTERFACE METHOD [SIGNATURE ARGS...]: calls storaged, prints the reply.
bus_call() {
    local reply
    echo "+ busctl call $SD_BUS $*" >&2
    reply=$(busctl --timeout=120 --json=short call "$SD_BUS" "$@" 2>&1) \
        || fail "$3 on $1: ${reply:-busctl failed}"
    printf '%s' "$reply" | bus_json_values call
}

# bus_get PATH INTERFACE PROPERTY: prints the property's value.
bus_get() {
    local reply
    reply=$(busctl --timeout=120 --json=short get-property "$SD_BUS" "$@" 2>&1) \
        || fail "get $3 of $1: ${reply:-busctl failed}"
    printf '%s' "$reply" | bus_json_values get
}

# await_object PATH WHAT: PATH as is, unless it is a Job, which is then waited
# for (a call that takes time may answer with a Job); prints nothing for a Job.
await_object() {
    local path=$1 what=$2 error
    case "$path" in
        "$SD_ROOT"/jobs/*)
            echo "$what answered with Job $path; waiting for it" >&2
            wait_for 180 "Job $path ($what) to complete" job_completed "$path"
            error=$(bus_get "$path" "$IF_JOB" Error)
            [ -z "$error" ] || fail "$what: Job $path failed: $error"
            ;;
        *) echo "$path" ;;
    esac
}

job_completed() {
    [ "$(busctl --json=short get-property "$SD_BUS" "$1" "$IF_JOB" Completed | bus_json_values get)" = true ]
}

# wait_pool_running POOL_PATH SECONDS
wait_pool_running() {
    local pool=$1 limit=${2:-60} start=$SECONDS state
    while :; do
        state=$(bus_get "$pool" "$IF_POOL" State)
        [ "$state" = running ] && return 0
        case "$state" in
            failed|degraded|inactive)
                ((SECONDS - start < 5)) || fail "pool $pool is $state: $(bus_get "$pool" "$IF_POOL" StateReason)" ;;
        esac
        ((SECONDS - start < limit)) \
            || fail "pool $pool is '$state' after ${limit}s, not running: $(bus_get "$pool" "$IF_POOL" StateReason)"
        sleep 1
    done
}

# loop_backing_files: the backing file of every attached loop device, one a line.
loop_backing_files() { losetup --list --noheadings --raw --output BACK-FILE | sed 's/[[:space:]]*$//'; }

# loop_of FILE: the loop device(s) backed by FILE.
loop_of() {
    losetup --list --noheadings --raw --output NAME,BACK-FILE \
        | awk -v f="$1" '{ n = $1; $1 = ""; sub(/^ /, ""); if ($0 == f) print n }'
}

# shellcheck source=remote.sh
. "$GUEST/remote.sh"
