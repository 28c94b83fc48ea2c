#!/bin/bash
# storaged VM lab, guest side: the per-run agent.
#
# Started by the image's generic agent (image/lab-agent) from the 9p share,
# mounted on /run/lab:
#   /run/lab/phase            boot1 or boot2 (written by the host); the shared
#                             stage's guests have lab.phase= (shared-a, shared-b,
#                             shared-a2, shared-b2) and lab.host= (a, b) on the
#                             kernel command line instead (two guests, one share)
#   /run/lab/sync/            the shared stage's cross-host barriers (files)
#   /run/lab/guest/           these scripts
#   /run/lab/src.tar          the working tree of the checkout under test
#   /run/lab/only             (run.sh --only) the boot-1 checks to run alone
#   /run/lab/debs/            storaged .debs to install (the previous build and this one)
#   /run/lab/results/         written here: PHASE.results (PASS/FAIL lines),
#                             PHASE.log (every check's output), PHASE.times,
#                             PHASE.done (only once the plan has run to its end)
# Progress and results also go to the second serial port (/dev/ttyS1), which
# the host shows live.
set -u

export LAB=/run/lab
export GUEST=$LAB/guest
export RESULTS=$LAB/results
export STATE=/var/lib/storaged-lab     # on the guest's root disk: survives the reboot
export PHASE LAB_HOST
cmdline_value() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
PHASE=$(cmdline_value lab.phase)
[ -n "$PHASE" ] || PHASE=$(cat "$LAB/phase")
LAB_HOST=$(cmdline_value lab.host)   # empty outside the shared stage
export SYNC=$LAB/sync
# run.sh --only: boot 1 runs only these checks (and those they need).
LAB_ONLY=
if [ "$PHASE" = boot1 ] && [ -s "$LAB/only" ]; then LAB_ONLY=$(tr '\n' ' ' < "$LAB/only"); fi
export LAB_ONLY
export LOG=$RESULTS/$PHASE.log

mkdir -p "$RESULTS" "$STATE"
exec 7> /dev/ttyS1
exec >> "$LOG" 2>&1

# shellcheck source=lib.sh
. "$GUEST/lib.sh"

serial "LAB $PHASE: agent started, waiting for the boot to finish"
sysstate=$(timeout 300 systemctl is-system-running --wait 2> /dev/null)
[ -n "$sysstate" ] || sysstate="unknown (is-system-running --wait gave no answer in 300s)"
echo "$sysstate" > /run/storaged-lab-system-state
read -r boot_uptime _ < /proc/uptime
serial "LAB ready: system $sysstate after ${boot_uptime}s; $(systemd-analyze 2> /dev/null | head -1)"

# shellcheck source=plan.sh
. "$GUEST/plan.sh"
: > "$RESULTS/$PHASE.results"
plan_fn=${PHASE//-/_}
"plan_$plan_fn"

read -r end_uptime _ < /proc/uptime
{
    echo "boot=$boot_uptime"
    echo "suite=$(awk -v a="$boot_uptime" -v b="$end_uptime" 'BEGIN { printf "%.1f", b - a }')"
} > "$RESULTS/$PHASE.times"
echo "passed=$PASSED failed=$FAILED" > "$RESULTS/$PHASE.done"
serial "LAB $PHASE done: $PASSED checks passed, $FAILED failed"
sync
# A phase may go on after its results are in (shared-a: hold a volume until
# the host kills this guest).
if declare -F "finish_$plan_fn" > /dev/null; then
    "finish_$plan_fn"
fi
