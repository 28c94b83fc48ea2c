"""storagectl on storaged.client: no lxml, $STORAGED_BUS, list columns from api.py,
and a failed job's own exit status."""
import asyncio
import os
import subprocess
import sys
import time

from storaged import api
from storaged.cli import EXIT_CODES
from storaged.cli.render import columns
from tests.harness import MiB
from tests.integration.test_cli import REPO, argv, ok, pool_file
from tests.integration.test_client import hang_resize_env


def test_storagectl_runs_without_lxml():
    code = ("import sys\n"
            "class NoLxml:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'lxml': raise ImportError('no lxml here')\n"
            "sys.meta_path.insert(0, NoLxml())\n"
            "from storaged.cli import main\n"
            "assert not [m for m in sys.modules if m.startswith(('lxml', 'storaged.model.definitions',"
            " 'storaged.bus', 'storaged.pools', 'storaged.engine'))], sorted(sys.modules)\n"
            "sys.exit(main(['--help']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "exit status:" in r.stdout


def test_list_columns_are_api_columns_in_table_order():
    assert columns(api.POOL_IFACE) == ["State", "Autostart", "Capacity", "Allocation", "Available",
                                       "Shared"]
    assert columns(api.JOB_IFACE) == [p.name for p in api.JOB_PROPERTIES if p.column]


def test_storaged_bus_is_the_default_bus(world):
    world.daemon()
    cmd = [sys.executable, "-m", "storaged.cli", "version"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO,
                       env=dict(os.environ, STORAGED_BUS=world.address))
    assert r.returncode == 0 and r.stdout.endswith(f"storaged {api.__version__}\n"), r.stderr
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO,
                       env=dict(os.environ, STORAGED_BUS=f"unix:path={world.path('none')}"))
    assert r.returncode == 1 and f"the bus at unix:path={world.path('none')}" in r.stderr


async def test_a_cancelled_job_exits_with_its_kind(world, client):
    world.daemon(env=hang_resize_env(world))
    name = f"{world.prefix}cj"
    ok(world, "pool-create", pool_file(world, name, ("cj.img", "64M")))
    ok(world, "vol-create", name, "hang-1", "4M")
    cli = subprocess.Popen(argv(world, "vol-resize", name, "hang-1", "8M", "--no-progress"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while not (jobs := await client.call(api.ROOT_PATH, "org.freedesktop.DBus.ObjectManager",
                                             "GetManagedObjects")) or \
                not any(api.JOB_IFACE in i for i in jobs.values()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        [job] = [p for p, i in jobs.items() if api.JOB_IFACE in i]
        assert ok(world, "job-cancel", job.rsplit("/", 1)[1]).startswith("Job ")
        out, err = cli.communicate(timeout=60)
    finally:
        cli.kill()
    assert (await client.get_all(job, api.JOB_IFACE))["ErrorName"] == \
        "org.storaged.Storaged1.Error.Cancelled"
    assert cli.returncode == EXIT_CODES["Cancelled"], (cli.returncode, err)
    assert out == "" and "cancelled" in err and err.startswith("storagectl: ")
