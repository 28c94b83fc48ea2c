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
    import subprocess
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
        await asyncio.sleep(0.2)
        left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
        assert left == "", f"left running: {left}"


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
