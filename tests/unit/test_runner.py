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
