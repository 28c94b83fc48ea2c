"""The long fuzz run: every entry point with thousands of hypothesis cases
through the real bus (tests/fuzzing.py has the strategies and the property).

Prints, per entry point: cases, successes, named errors by kind, and problems
(an unnamed or internal error, a change left behind by an error); then the
daemon restarts, which must be 0. Exit status 1 if anything was wrong.

Every method of dbus/org.storaged.Storaged1.xml must be called by an entry
point (tests/fuzzing_entries.py: uncovered()); the run fails at once naming
any that is not.

Usage: .venv/bin/python bench/fuzz.py [--cases 5000] [--full-every 100] [ENTRY ...]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from bench.common import isolated_world  # noqa: E402
from tests.conftest import World  # noqa: E402
from tests.fuzzing_entries import FullFuzzer, uncovered  # noqa: E402
from tests.integration.test_fuzz import ENTRY_POINTS  # noqa: E402
from tests.lvmenv import cleanup  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=5000, help="cases per entry point")
    ap.add_argument("--full-every", type=int, default=100,
                    help="a full `lvm fullreport` comparison every N error cases "
                         "(the PV metadata fingerprint is compared after every case)")
    ap.add_argument("entries", nargs="*", default=ENTRY_POINTS)
    opts = ap.parse_args()
    missing = uncovered()
    if missing:
        print(f"methods of dbus/org.storaged.Storaged1.xml no entry point calls: {', '.join(missing)}")
        return 1
    base, bus = isolated_world("storaged-fuzz-")
    world = World(base, bus)
    daemon = world.daemon()
    fuzzer = FullFuzzer(world, daemon, full_every=opts.full_every)
    try:
        print(f"{'entry point':<18}{'cases':>7}{'ok':>7}  named errors by kind{'':<30}{'s':>6}")
        for entry in opts.entries:
            t0 = time.monotonic()

            @settings(max_examples=opts.cases, deadline=None, database=None,
                      phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(fuzzer.strategies()[entry])
            def case(args):
                fuzzer.run(entry, args)

            case()
            c = fuzzer.counts[entry]
            kinds = ", ".join(f"{k.split(':', 1)[1]} {n}" for k, n in sorted(c.items()) if k != "ok")
            print(f"{entry:<18}{sum(c.values()):>7}{c['ok']:>7}  {kinds:<50}{time.monotonic() - t0:>6.0f}",
                  flush=True)
        total = sum(sum(c.values()) for c in fuzzer.counts.values())
        print(f"total cases {total}, successes {sum(c['ok'] for c in fuzzer.counts.values())}, "
              f"problems {len(fuzzer.problems)}, daemon restarts {fuzzer.restarts}")
        for p in fuzzer.problems[:30]:
            print("PROBLEM", p)
        return 1 if fuzzer.problems or fuzzer.restarts else 0
    finally:
        fuzzer.close()
        daemon.stop()
        bus.stop()
        cleanup(base)


if __name__ == "__main__":
    sys.exit(main())
