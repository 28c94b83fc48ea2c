"""storagectl when the daemon or the bus goes away under it, and the hints it
gives where a table alone would mislead."""
import os
import signal
import subprocess
import sys
import time

from tests.integration.test_cli import REPO, argv, ctl, fails, ok, pool_file


def wait_for_line(path: str, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            if text in f.read():
                return
        time.sleep(0.005)
    raise AssertionError(f"{text!r} not in {path}")


def test_pool_create_reports_what_the_call_returned_when_storaged_stops(world):
    d = world.daemon()
    name = f"{world.prefix}term"
    xml = pool_file(world, name, ("t1.img", "16M"), ("t2.img", "16M"), ("t3.img", "16M"))
    cli = subprocess.Popen(argv(world, "pool-create", xml), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        wait_for_line(d.log_path, "calls CreatePool")
        d.proc.send_signal(signal.SIGTERM)  # the daemon finishes the call, then leaves
        out, err = cli.communicate(timeout=60)
    finally:
        cli.kill()
    assert d.proc.wait(30) == 0
    assert out == f"Pool {name} created\n", (out, err)
    assert cli.returncode == 0, err
    assert "not running" not in err


def test_monitor_exits_when_the_bus_goes_away(world):
    world.daemon()
    mon = subprocess.Popen(argv(world, "monitor"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, cwd=REPO)
    try:
        assert "monitoring storaged" in mon.stderr.readline()
        world.bus.stop()
        code = mon.wait(10)  # it hung here forever
        err = mon.stderr.read()
    finally:
        mon.kill()
    assert code == 1 and "lost the connection to the bus" in err, (code, err)


def test_vol_list_of_an_inactive_pool_says_why_it_is_empty(world):
    world.daemon()
    name = f"{world.prefix}idle"
    ok(world, "pool-define", pool_file(world, name, ("idle.img", "16M")))
    r = ctl(world, "vol-list", name)
    assert r.returncode == 0
    assert f"pool {name} is inactive" in r.stderr and f"pool-start {name}" in r.stderr
    assert ctl(world, "vol-list", name, "--json").stdout.strip() == "[]"


def test_job_cancel_of_a_job_that_never_was(world):
    world.daemon()
    msg = fails(world, "NotFound", "job-cancel", "99")
    assert "there is no job 99" in msg and "meanwhile" not in msg


def test_daemon_help_describes_every_option():
    out = subprocess.run([sys.executable, "-m", "storaged.daemon", "--help"], capture_output=True,
                         text=True, cwd=REPO, env=dict(os.environ, COLUMNS="200")).stdout
    for option, says in (("--config-dir", "pool definitions"), ("--state-dir", "records"),
                         ("--run-dir", "NFS mount points")):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(option))
        assert says in line, line


def test_sizes_and_schema_errors_through_storagectl(world):
    world.daemon()
    name = f"{world.prefix}sz"
    ok(world, "pool-create", pool_file(world, name, ("sz.img", "16M")))
    for size, says in (("0.1", "not a whole number of bytes"), ("1.5", "not a whole number of bytes"),
                       ("\uff11\uff10M", "is not a size")):
        assert says in fails(world, "InvalidArgument", "vol-create", name, "v", size)
    path = world.path("bad.xml")
    with open(path, "w") as f:
        f.write(f"<pool type='lvm'><name>{world.prefix}bad</name><physical_volume type='file'>"
                f"<file sise='16M'>{world.path('bad.img')}</file></physical_volume></pool>")
    msg = fails(world, "InvalidArgument", "pool-create", path)
    assert "<pool><physical_volume><file>: Invalid attribute sise" in msg
