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
