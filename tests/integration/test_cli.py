"""storagectl as an admin runs it: a subprocess talking to a real daemon on the
test's own bus, over real LVM. Every error path is one line on stderr, an exit
status by kind, and never a traceback."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest
from dbus_fast import DBusError

from storaged import __version__
from storaged.cli import EXIT_CODES, VERBS, parser
from tests.harness import MANAGER, ROOT, MGR, POOL, VOL, MiB

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOBODY = ["setpriv", "--reuid=nobody", "--regid=65534", "--clear-groups"]


def argv(world, *args, user=None):
    cmd = [sys.executable, "-m", "storaged.cli", "--bus", world.address, *args]
    return NOBODY + cmd if user else cmd


def ctl(world, *args, input=None, user=None):
    r = subprocess.run(argv(world, *args, user=user), input=input, capture_output=True,
                       text=True, timeout=60, cwd=REPO)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def ok(world, *args, **kw) -> str:
    r = ctl(world, *args, **kw)
    assert r.returncode == 0, (args, r.returncode, r.stderr)
    return r.stdout


def fails(world, kind, *args, **kw) -> str:
    """The error's one line on stderr, after checking the exit status."""
    r = ctl(world, *args, **kw)
    assert r.returncode == EXIT_CODES[kind], (args, r.returncode, r.stderr)
    assert r.stdout == ""
    assert r.stderr.startswith("storagectl: ") and r.stderr.count("\n") == 1, r.stderr
    return r.stderr


def pool_file(world, name, *files, **kw) -> str:
    path = world.path(f"{name}.xml")
    with open(path, "w") as f:
        f.write(world.pool_xml(name, *files, **kw))
    return path


async def test_pool_lifecycle(world, client):
    world.daemon()
    name = f"{world.prefix}life"
    img = world.path("life.img")
    assert ok(world, "pool-define", pool_file(world, name, ("life.img", "16M"))) == f"Pool {name} defined\n"
    lines = ok(world, "pool-list").splitlines()
    assert lines[0].split() == ["Name", "State", "Autostart", "Capacity", "Allocation", "Available",
                                "Shared"]
    assert set(lines[1]) == {"-"}
    assert lines[2].split() == [name, "inactive", "no", "0", "B", "0", "B", "0", "B", "no"]
    [listed] = json.loads(ok(world, "pool-list", "--json"))
    assert listed["name"] == name and listed["state"] == "inactive" and listed["autostart"] is False
    assert listed["object"].startswith(f"{ROOT}/pools/")

    assert ok(world, "pool-build", name) == f"Pool {name} built\n"
    with open(img, "rb") as f:
        assert f.read(1024)[512:520] == b"LABELONE"
    assert ok(world, "pool-start", name) == f"Pool {name} started\n"
    path = await client.call(MANAGER, MGR, "LookupPool", "s", [name])
    assert await client.get(path, POOL, "State") == "running"

    info = ok(world, "pool-info", name)
    assert re.search(r"^State:\s+running$", info, re.M), info
    assert re.search(r"^Capacity:\s+12\.0 MiB$", info, re.M), info  # 16 MiB less LVM metadata
    assert re.search(r"^Physical volumes:\s+/dev/loop\d+$", info, re.M), info
    assert "State reason" not in info  # empty values are left out
    data = json.loads(ok(world, "pool-info", name, "--json"))
    assert data["object"] == path and data["capacity"] == 12 * MiB and data["volume_group"] == name
    assert data["volumes"] == [] and data["state_reason"] == ""
    assert set(data) == {"object", "name", "uuid", "state", "state_reason", "volume_group", "autostart",
                         "capacity", "allocation", "available", "physical_volumes", "volumes",
                         "thin_pool_size", "thin_data_usage", "thin_metadata_usage",
                         "virtual_allocation", "shared", "lock_type", "host_id"}

    assert ok(world, "pool-autostart", name) == f"Pool {name} marked as autostarted\n"
    assert await client.get(path, POOL, "Autostart") is True
    ok(world, "pool-autostart", name, "--disable")
    assert await client.get(path, POOL, "Autostart") is False
    xml = ok(world, "pool-dumpxml", name)
    assert f"<name>{name}</name>" in xml and img in xml
    assert json.loads(ok(world, "pool-dumpxml", name, "--json"))["xml"].strip() == xml.strip()
    assert ok(world, "pool-refresh", name) == f"Pool {name} refreshed\n"
    assert ok(world, "pool-refresh") == "Pools refreshed\n"

    assert ok(world, "pool-stop", name) == f"Pool {name} stopped\n"
    assert await client.get(path, POOL, "State") == "inactive"
    assert ok(world, "pool-delete", name) == f"Pool {name} deleted\n"
    assert not os.path.exists(img)
    assert ok(world, "pool-undefine", name) == f"Pool {name} undefined\n"
    assert json.loads(ok(world, "pool-list", "--json")) == []
    assert ok(world, "pool-list", "--name") == ""


async def test_volumes_and_resolve_disk(world, client):
    world.daemon()
    name = f"{world.prefix}vols"
    assert ok(world, "pool-create", "-", input=world.pool_xml(name, ("v.img", "32M"))) == \
        f"Pool {name} created\n"
    for vol, size in (("v8", "8M"), ("v4", "4MiB"), ("vb", str(4 * MiB))):
        assert ok(world, "vol-create", name, vol, size) == f"Volume {vol} created in pool {name}\n"
    path = await client.call(MANAGER, MGR, "LookupVolume", "ss", [name, "v8"])
    assert await client.get(path, VOL, "Capacity") == 8 * MiB

    lines = ok(world, "vol-list", name).splitlines()
    assert lines[0].split() == ["Name", "Path", "Capacity", "Active", "Thin", "Origin", "Data", "usage",
                                "Lock"]
    assert lines[2].split() == ["v4", f"/dev/{name}/v4", "4.0", "MiB", "no", "no", "-", "0%", "none"]
    assert lines[4].split()[:4] == ["vb", f"/dev/{name}/vb", "4.0", "MiB"]
    vols = json.loads(ok(world, "vol-list", name, "--json"))
    assert [v["name"] for v in vols] == ["v4", "v8", "vb"]
    assert {v["pool"] for v in vols} == {name} and vols[1]["capacity"] == 8 * MiB
    assert set(vols[0]) == {"object", "name", "uuid", "pool", "path", "capacity", "active",
                            "thin", "origin", "data_usage", "lock"}
    assert ok(world, "vol-list", name, "--name") == "v4\nv8\nvb\n"

    info = ok(world, "vol-info", name, "v8")
    assert re.search(rf"^Path:\s+/dev/{name}/v8$", info, re.M) and re.search(rf"^Pool:\s+{name}$", info, re.M)
    data = json.loads(ok(world, "vol-info", name, "v8", "--json"))
    assert data["object"] == path and data["capacity"] == 8 * MiB and data["pool"] == name
    assert ok(world, "vol-path", name, "v8") == f"/dev/{name}/v8\n"
    assert json.loads(ok(world, "vol-path", name, "v8", "--json")) == {"path": f"/dev/{name}/v8"}
    assert "<name>v8</name>" in ok(world, "vol-dumpxml", name, "v8")

    xml = world.path("x3.xml")
    with open(xml, "w") as f:
        f.write("<volume><name>x3</name><capacity unit='M'>4</capacity></volume>")
    assert ok(world, "vol-create-xml", name, xml) == f"Volume x3 created in pool {name}\n"
    x3 = await client.call(MANAGER, MGR, "LookupVolume", "ss", [name, "x3"])
    assert await client.get(x3, VOL, "Capacity") == 4 * MiB

    disk = f"<disk type='volume'><source volume='v8' pool='{name}'/><target dev='vda'/></disk>"
    out = ok(world, "resolve-disk", "-", input=disk)
    assert out == f'<disk type="block"><source dev="/dev/{name}/v8"/><target dev="vda"/></disk>\n'
    with open(world.path("disk.xml"), "w") as f:
        f.write(disk)
    assert json.loads(ok(world, "resolve-disk", world.path("disk.xml"), "--json")) == {"xml": out.strip()}

    assert ok(world, "vol-delete", name, "v8") == f"Volume v8 deleted from pool {name}\n"
    with pytest.raises(DBusError):
        await client.call(MANAGER, MGR, "LookupVolume", "ss", [name, "v8"])
    assert ok(world, "vol-list", name, "--name") == "v4\nvb\nx3\n"


async def test_errors_are_one_line_with_an_exit_status_by_kind(world):
    world.daemon()
    name = f"{world.prefix}err"
    ok(world, "pool-create", pool_file(world, name, ("e.img", "16M")))
    ok(world, "vol-create", name, "keep", "4M")

    assert fails(world, "NotFound", "pool-info", "nope") == "storagectl: not found: no pool named 'nope'\n"
    assert "no volume named 'nope'" in fails(world, "NotFound", "vol-info", name, "nope")
    assert "no pool named" in fails(world, "NotFound", "vol-resize", "nope", "v", "1M")
    assert "invalid argument: size" in fails(world, "InvalidArgument", "vol-create", name, "x", "12Q")
    assert "greater than zero" in fails(world, "InvalidArgument", "vol-create", name, "x", "0")
    assert "cannot read" in fails(world, "InvalidArgument", "pool-define", world.path("missing.xml"))
    assert "invalid argument" in fails(world, "InvalidArgument", "pool-define", "-",
                                       input="<pool type='lvm'><name>x</name>")
    assert "already defined" in fails(world, "AlreadyExists", "pool-define",
                                      pool_file(world, name, ("other.img", "16M")))
    assert "already has a volume" in fails(world, "AlreadyExists", "vol-create", name, "keep", "4M")
    assert "no space" in fails(world, "NoSpace", "vol-create", name, "big", "1G")
    assert "busy: " in fails(world, "Busy", "pool-undefine", name)
    # Start "succeeds" on a pool whose file is missing; the pool is degraded, and the admin hears it.
    ok(world, "pool-define", pool_file(world, f"{name}2", ("never-built.img", "16M")))
    msg = fails(world, "Degraded", "pool-start", f"{name}2")
    assert msg.startswith(f"storagectl: degraded: pool {name}2 is degraded: ") and "never-built.img" in msg
    assert ok(world, "vol-list", name, "--name") == "keep\n"  # nothing changed

    # Usage errors: one line too, with a pointer to the help.
    assert "invalid choice" in fails(world, "InvalidArgument", "pool-frobnicate")
    assert "required: VERB" in fails(world, "InvalidArgument")
    assert "see 'storagectl vol-create --help'" in fails(world, "InvalidArgument", "vol-create", name)
    assert "not a job number" in fails(world, "InvalidArgument", "job-cancel", "abc")
    fails(world, "InvalidArgument", "monitor", "--count", "many")


async def test_unprivileged_caller_reads_but_is_not_authorized_to_change(world, client):
    world.daemon()
    name = f"{world.prefix}np"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(name, ("np.img", "16M"))])
    assert name in ok(world, "pool-list", user="nobody")
    assert ok(world, "pool-info", name, "--json", user="nobody").count(name) >= 2
    msg = fails(world, "NotAuthorized", "pool-stop", name, user="nobody")
    assert msg == "storagectl: not authorized: pool-stop needs root (the bus policy refused the call)\n"
    fails(world, "NotAuthorized", "vol-create", name, "v", "4M", user="nobody")
    fails(world, "NotAuthorized", "pool-define", "-", input=world.pool_xml("z"), user="nobody")
    assert await client.get(pool, POOL, "State") == "running"
    assert await client.get(pool, POOL, "Volumes") == []


def test_daemon_not_running_or_no_bus(world):
    where = f"the bus at {world.address}"
    assert fails(world, "Failed", "pool-list") == f"storagectl: storaged is not running on {where}\n"
    assert "not running" in fails(world, "Failed", "monitor")
    r = subprocess.run([sys.executable, "-m", "storaged.cli", "--bus", f"unix:path={world.path('none')}",
                        "pool-list"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("storagectl: cannot connect to the bus at unix:path=") and r.stderr.count("\n") == 1


async def test_job_verbs_pv_verbs_resize_and_wipe(world, client):
    world.daemon()
    name = f"{world.prefix}new"
    ok(world, "pool-create", pool_file(world, name, ("n.img", "16M")))
    ok(world, "vol-create", name, "v", "4M")
    with open(world.path("pv.xml"), "w") as f:
        f.write(f"<physical_volume type='file'><file size='16M'>{world.path('n2.img')}</file></physical_volume>")
    ok(world, "pool-add-pv", name, world.path("pv.xml"))
    info = json.loads(ok(world, "pool-info", name, "--json"))
    assert len(info["physical_volumes"]) == 2 and os.path.exists(world.path("n2.img"))

    out = ok(world, "vol-resize", name, "v", "8M", "--no-progress")
    assert "resized" in out
    assert json.loads(ok(world, "vol-info", name, "v", "--json"))["capacity"] == 8 * MiB
    msg = fails(world, "InvalidArgument", "vol-resize", name, "v", "4M")
    assert "force" in msg
    ok(world, "vol-resize", name, "v", "4M", "--force", "--no-progress")
    assert json.loads(ok(world, "vol-info", name, "v", "--json"))["capacity"] == 4 * MiB
    job = ok(world, "vol-resize", name, "v", "8M", "--no-wait").strip()
    assert job.startswith(f"{ROOT}/jobs/")

    ok(world, "pool-remove-pv", name, world.path("n2.img"), "--no-progress")
    assert not os.path.exists(world.path("n2.img"))
    assert len(json.loads(ok(world, "pool-info", name, "--json"))["physical_volumes"]) == 1

    jobs = json.loads(ok(world, "job-list", "--json"))
    assert len(jobs) == 4  # three resizes and the removal; the refused shrink made none
    assert {j["operation"].split()[0] for j in jobs} >= {"resize", "remove"}
    assert ok(world, "job-list").split("\n")[0].split() == ["Job", "Operation", "Progress", "Completed",
                                                            "Started", "by", "UID", "Error"]
    msg = fails(world, "InvalidArgument", "job-cancel", jobs[0]["object"].rsplit("/", 1)[1])
    assert "already completed" in msg
    # No device nodes here (metadata-only LVM): wipe says why.
    msg = fails(world, "Failed", "vol-wipe", name, "v")
    assert "device node" in msg


def start_monitor(world, *args):
    proc = subprocess.Popen(argv(world, "monitor", *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    ready = proc.stderr.readline()  # said once its match rules are in place
    assert ready.startswith("storagectl: monitoring storaged on"), ready
    return proc


def test_monitor_prints_events_one_a_line(world):
    world.daemon()
    name = f"{world.prefix}mon"
    mon = start_monitor(world, "--json", "--count", "2")
    ok(world, "pool-define", pool_file(world, name, ("m.img", "16M")))
    out, err = mon.communicate(timeout=30)
    assert mon.returncode == 0 and "Traceback" not in err
    added, changed = [json.loads(line) for line in out.splitlines()]
    assert (added["event"], added["kind"], added["name"]) == ("added", "pool", name)
    assert added["properties"]["state"] == "inactive" and added["object"].startswith(f"{ROOT}/pools/")
    assert (changed["event"], changed["kind"], changed["properties"]) == ("changed", "manager", {"pools": [name]})

    ok(world, "pool-build", name)
    ok(world, "pool-start", name)
    mon = start_monitor(world, "--count", "1")
    ok(world, "vol-create", name, "v1", "4M")
    out, _ = mon.communicate(timeout=30)
    assert re.fullmatch(rf"\d\d:\d\d:\d\d added volume {name}/v1\n", out), out

    mon = start_monitor(world)
    mon.send_signal(signal.SIGINT)  # Ctrl-C is how a monitor ends
    out, err = mon.communicate(timeout=30)
    assert mon.returncode == 130 and out == "" and err == ""


def test_version(world):
    world.daemon()
    assert json.loads(ok(world, "version", "--json")) == {"storagectl": __version__, "storaged": __version__}


def test_help_for_the_tool_and_every_verb(capsys):
    with pytest.raises(SystemExit) as done:
        parser().parse_args(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for kind, code in EXIT_CODES.items():
        assert re.search(rf"^ +{code}  .*{' '.join(re.findall('[A-Z][a-z]+', kind)).lower()}", text, re.M), kind
    assert all(name in text for name in VERBS)
    for name in VERBS:
        with pytest.raises(SystemExit) as done:
            parser().parse_args([name, "--help"])
        assert done.value.code == 0 and capsys.readouterr().out.startswith(f"usage: storagectl {name}")


def test_bash_completion(world):
    world.daemon()
    name = f"{world.prefix}comp"
    ok(world, "pool-create", pool_file(world, name, ("c.img", "16M")))
    ok(world, "vol-create", name, "disk1", "4M")

    def complete(*words):
        script = (f'storagectl() {{ "{sys.executable}" -m storaged.cli --bus "{world.address}" "$@"; }}\n'
                  f'source "{REPO}/completion/storagectl.bash"\n'
                  f'COMP_WORDS=(storagectl {" ".join(repr(w) for w in words)}); '
                  f'COMP_CWORD={len(words)}; _storagectl; printf "%s\\n" "${{COMPREPLY[@]}}"')
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
        assert r.returncode == 0, r.stderr
        return set(r.stdout.split())

    assert complete("") == set(VERBS) | {"--bus", "--help"}
    assert complete("pool-in") == {"pool-info"}
    assert complete("pool-info", "") == {name}
    assert complete("vol-wipe", name, "") == {"disk1"}
    assert complete("vol-wipe", "--no") == {"--no-wait", "--no-progress"}
    assert complete("--bus", "s") == {"system", "session"}


async def test_pool_stop_network_stops_only_pools_with_network_pvs(world, client):
    """What storaged-network-pools.service runs at shutdown: every started pool
    with an iSCSI or NFS PV is stopped, local pools stay up, and without a
    running daemon it does nothing (and starts nothing)."""
    d = world.daemon()
    local = f"{world.prefix}local"
    ok(world, "pool-create", pool_file(world, local, ("local.img", "16M")))
    nfs = f"{world.prefix}nfs"
    with open(world.path("nfs.xml"), "w") as f:  # its server is not there: started degraded
        f.write(f"<pool type='lvm'><name>{nfs}</name><physical_volume type='nfs'>"
                f"<server>127.0.0.1</server><export>/none</export><file size='16M'>p.img</file>"
                f"</physical_volume></pool>")
    ok(world, "pool-define", world.path("nfs.xml"))
    ctl(world, "pool-start", nfs)
    assert json.loads(ok(world, "pool-info", nfs, "--json"))["state"] == "degraded"
    assert ok(world, "pool-stop", "--network") == f"Pool {nfs} stopped\n"
    assert json.loads(ok(world, "pool-info", nfs, "--json"))["state"] == "inactive"
    assert json.loads(ok(world, "pool-info", local, "--json"))["state"] == "running"
    assert ok(world, "pool-stop", "--network") == ""  # nothing left to stop
    fails(world, "InvalidArgument", "pool-stop")
    fails(world, "InvalidArgument", "pool-stop", local, "--network")
    ok(world, "pool-stop", local)
    d.stop()
    assert ok(world, "pool-stop", "--network") == "storaged is not running: no pool to stop\n"
