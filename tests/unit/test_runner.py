"""runner: how a failed command's words reach an error message."""
from storaged.system.runner import _useful_lines


def test_repeated_lines_are_said_once_in_their_order():
    stderr = ("iscsiadm: cannot make connection to 127.0.0.1: Connection refused\n" * 6
              + "iscsiadm: connection login retries (reopen_max) 5 exceeded\n"
              + "iscsiadm: cannot make connection to 127.0.0.1: Connection refused\n")
    assert _useful_lines(stderr) == ("iscsiadm: cannot make connection to 127.0.0.1: Connection refused; "
                                     "iscsiadm: connection login retries (reopen_max) 5 exceeded")


def test_noise_is_dropped_unless_it_is_all_there_is():
    noise = "WARNING: Activation disabled. No device-mapper interaction will be attempted."
    assert _useful_lines(f"{noise}\n  Volume group \"x\" not found\n") == 'Volume group "x" not found'
    assert _useful_lines(f"{noise}\n") == noise
    assert _useful_lines("\n\n") == ""


async def test_cancel_while_spawning_kills_the_whole_group_at_once():
    """Cancelled at any step of starting a command, the whole group is killed
    at once. (Cancelled while the command was being started, asyncio alone
    killed only its pid and then waited for its pipes, which its child held: a
    Job's Cancel hung for as long as that child ran. test_client's cancelled
    resize caught it about one run in two.)"""
    import asyncio
    import time

    from storaged.system import runner

    marker = "storaged-runner-test-4711"
    for yields in range(8):  # cancelled at each step of the spawn in turn
        task = asyncio.ensure_future(runner.run(["sh", "-c", f"sleep 600 {marker} & wait"]))
        for _ in range(yields):
            await asyncio.sleep(0)
        task.cancel()
        started = time.monotonic()
        try:
            await asyncio.wait_for(task, 10)
        except asyncio.CancelledError:
            pass
        assert time.monotonic() - started < 6
        await _assert_gone(marker)


# A child that outlives its shell unless the whole group is killed; `marker`
# (ignored by it) names it for pgrep.
_SLEEPER = "python3 -c 'import time; time.sleep(600)'"


async def _assert_gone(marker: str) -> None:
    import asyncio
    import subprocess
    await asyncio.sleep(0.2)
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert left == "", f"left running: {left}"


async def _sleeper_cancelled(marker: str, on_cancel, cancel_wait: float, then=None) -> float:
    """run_lines of a shell whose child sleeps, cancelled once it has printed
    its first line (then `await then()` and cancelled again, if given); the
    seconds from the (last) cancel to the end of the run, which must end
    Cancelled."""
    import asyncio

    from storaged.system import runner

    lines: list[str] = []
    task = asyncio.ensure_future(runner.run_lines(
        ["sh", "-c", f"echo started; {_SLEEPER} {marker} & wait"], lines.append,
        on_cancel=on_cancel, cancel_wait=cancel_wait))
    return await _cancel_after_output(task, lines, then)


async def _cancel_after_output(task, lines, then=None) -> float:
    import asyncio
    import time
    for _ in range(200):
        if lines:
            break
        await asyncio.sleep(0.05)
    assert lines, "the command printed nothing"
    task.cancel()
    if then is not None:
        await then()
        task.cancel()
    started = time.monotonic()
    try:
        await asyncio.wait_for(task, 15)
    except asyncio.CancelledError:
        return time.monotonic() - started
    raise AssertionError("the cancelled run did not end Cancelled")


async def test_cancel_with_on_cancel_lets_the_command_stop_by_itself(tmp_path):
    """A cancelled command with on_cancel is asked to stop its own way (as
    pvmove by `pvmove --abort` beside it) and not killed: here a script that
    stops when a file appears, and says so on its way out; killed, it could
    not. Its output is still read while it stops."""
    import asyncio

    from storaged.system import runner

    stop, said = tmp_path / "stop", tmp_path / "said"
    script = (f"echo started; while [ ! -e {stop} ]; do sleep 0.05; done; "
              f"echo stopping; echo 'stopped by itself' > {said}")
    lines, asked = [], []

    async def on_cancel():
        asked.append(1)
        stop.touch()
    task = asyncio.ensure_future(runner.run_lines(["sh", "-c", script], lines.append,
                                                  on_cancel=on_cancel, cancel_wait=10))
    took = await _cancel_after_output(task, lines)
    assert asked == [1]
    assert said.read_text() == "stopped by itself\n"
    assert lines == ["started", "stopping"]
    assert took < 5


async def test_a_command_that_does_not_stop_when_asked_is_killed_after_the_wait():
    asked = []

    async def on_cancel():
        asked.append(1)
    took = await _sleeper_cancelled("storaged-runner-test-4712", on_cancel, 1.5)
    assert asked == [1]
    assert 1.4 < took < 8, f"killed after {took:.1f} s, not after the 1.5 s wait"
    await _assert_gone("storaged-runner-test-4712")


async def test_a_failing_on_cancel_kills_the_command_at_once():
    from storaged.errors import Failed

    async def on_cancel():
        raise Failed("pvmove --abort: LVM says: no")
    took = await _sleeper_cancelled("storaged-runner-test-4713", on_cancel, 30)
    assert took < 6
    await _assert_gone("storaged-runner-test-4713")


async def test_cancelled_again_while_it_stops_kills_it():
    """A second cancel (the daemon stopping) does not wait out cancel_wait."""
    import asyncio
    asked = asyncio.Event()

    async def on_cancel():
        asked.set()

    async def then():
        await asyncio.wait_for(asked.wait(), 5)
    took = await _sleeper_cancelled("storaged-runner-test-4714", on_cancel, 60, then)
    assert asked.is_set()
    assert took < 6
    await _assert_gone("storaged-runner-test-4714")


async def test_commands_start_no_thread_and_side_by_side_count_once():
    """Each command's exit is learnt through a pidfd: Python 3.11's default
    watcher started a thread per command and waited for it (1-2 ms of every
    command on a busy host). Spent counts commands, and the time during which
    any ran, so that commands side by side are not counted twice."""
    import asyncio
    import threading

    from storaged.system import runner
    runner.watch_children_by_pidfd()
    try:
        count, seconds = runner.Spent.count, runner.Spent.seconds
        threads = []

        async def look():
            while True:
                threads.append(threading.active_count())
                await asyncio.sleep(0.005)
        looking = asyncio.ensure_future(look())
        try:
            results = await asyncio.gather(*(runner.run(["sleep", "0.3"]) for _ in range(3)))
        finally:
            looking.cancel()
        assert [r.returncode for r in results] == [0, 0, 0]
        assert max(threads) == min(threads) == threading.active_count()
        assert runner.Spent.count == count + 3
        assert 0.3 <= runner.Spent.seconds - seconds < 0.6
    finally:
        asyncio.get_event_loop_policy().set_child_watcher(None)  # the next test's loop makes its own
