"""Every entry point, fuzzed with hypothesis through the real bus: each call
succeeds or answers a named error, the daemon stays up, and an error changes
nothing in LVM or on disk. A short run here; bench/fuzz.py runs thousands."""
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzzing_entries import ENTRIES, INTROSPECTION, FullFuzzer, uncovered

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


def test_every_method_of_the_api_is_fuzzed(tmp_path):
    """The introspection file is the list: a method no entry point calls fails
    here, named (a copy of the file with one more method shows it would)."""
    assert uncovered() == [], f"methods no fuzz entry point calls: {uncovered()}"
    with open(INTROSPECTION, encoding="utf-8") as f:
        text = f.read()
    more = tmp_path / "api.xml"
    more.write_text(text.replace('<method name="Cancel"/>', '<method name="Cancel"/><method name="Pause"/>'))
    assert uncovered(str(more)) == ["org.storaged.Storaged1.Job.Pause"]
