"""Every entry point, fuzzed with hypothesis through the real bus: each call
succeeds or answers a named error, the daemon stays up, and an error changes
nothing in LVM or on disk. A short run here; bench/fuzz.py runs thousands."""
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzzing_entries import ENTRIES, FullFuzzer

ENTRY_POINTS = ["DefinePool", "CreatePool", "CreateVolume", "AllocateVolume", "DeallocateVolume",
                "LookupPool", "LookupVolume", "ResolveDisk", "WrongSignature", *ENTRIES]


@pytest.fixture
def fuzzer(world):
    f = FullFuzzer(world, world.daemon(), full_every=10)
    try:
        yield f
    finally:
        f.close()


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_fuzz(fuzzer, entry):
    @settings(max_examples=60, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(fuzzer.strategies()[entry])
    def case(args):
        fuzzer.run(entry, args)

    case()
    assert fuzzer.problems == [], "\n".join(fuzzer.problems[:20])
    assert fuzzer.restarts == 0
    assert sum(fuzzer.counts[entry].values()) > 0
    print(entry, dict(fuzzer.counts[entry]))
