"""A cancelled move off a PV (RemovePhysicalVolume's pvmove), the engine's
side: the pvmove is stopped LVM's way (`pvmove --abort` beside it, then it
exits by itself), not killed, and the volumes active before are live after.

Real device-mapper and pvmove are the VM lab's (faults.cancel); here a shell
script stands in for pvmove (it prints progress as pvmove does and exits when
the stand-in for `pvmove --abort` says so), and the LVM calls around it are
recorded."""
import asyncio
from types import SimpleNamespace

from storaged.engine import physical
from storaged.engine.physical import PhysicalVolumes
from storaged.system import runner


class FakeLvm:
    def __init__(self, tmp_path, dm):
        self.stop = tmp_path / "abort-requested"
        self.exited = tmp_path / "pvmove-exited"
        self.calls: list[tuple] = []
        self.dm = dm

    async def pvmove(self, device, on_progress, on_cancel=None):
        script = (f"echo '  {device}: Moved: 0.00%'; sleep 0.2; echo '  {device}: Moved: 25.00%'; "
                  f"while [ ! -e {self.stop} ]; do sleep 0.05; done; "
                  f"echo 'exited by itself' > {self.exited}")

        def line(text):
            if "Moved: 25.00%" in text:
                on_progress(0.25)
        self.calls.append(("pvmove", device))
        await runner.run_lines(["sh", "-c", script], line, on_cancel=on_cancel, cancel_wait=10)

    async def pvmove_abort(self):
        self.calls.append(("pvmove --abort",))
        self.stop.touch()

    async def fullreport(self):
        return {}

    async def dm_states(self):
        self.calls.append(("dmsetup info",))
        return self.dm

    async def lvchange_refresh(self, vg, name):
        self.calls.append(("lvchange --refresh", f"{vg}/{name}"))

    async def lvchange_activate(self, vg, name, active, mode=""):
        self.calls.append(("lvchange -ay" if active else "lvchange -an", f"{vg}/{name}"))


class Engine(PhysicalVolumes):
    def __init__(self, lvm):
        self.lvm = lvm
        self.activation = True
        self.refreshed = 0

    async def _refresh(self, pools, starting=False):
        self.refreshed += 1


def volume(name, active=True):
    return SimpleNamespace(name=name, active=active)


async def test_a_cancelled_move_is_aborted_once_and_the_pvmove_exits_by_itself(tmp_path, monkeypatch):
    # fv: live with its node; gone: no device-mapper device; held: suspended;
    # my-lv: a table left loaded but not live; off: was not active before.
    lvm = FakeLvm(tmp_path, {"vg--x-fv": "L--w", "vg--x-held": "L-sw", "vg--x-my--lv": "LI-w"})
    engine = Engine(lvm)
    pool = SimpleNamespace(name="p", vg_name="vg-x", volumes={
        n: volume(n, n != "off") for n in ("fv", "gone", "held", "my-lv", "off")})
    nodes = {"/dev/vg-x/fv", "/dev/vg-x/held", "/dev/vg-x/my-lv"}

    async def node_appears(path, wait):
        return path in nodes
    monkeypatch.setattr(physical, "_node_appears", node_appears)
    progress = []
    task = asyncio.ensure_future(engine._move_off(pool, "/dev/sdz", SimpleNamespace(
        set_progress=progress.append)))
    for _ in range(100):
        if progress:
            break
        await asyncio.sleep(0.05)
    assert progress == [0.25]
    task.cancel()
    try:
        await asyncio.wait_for(task, 15)
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancelled move did not end Cancelled")
    assert lvm.exited.read_text() == "exited by itself\n"  # not killed
    assert lvm.calls == [
        ("pvmove", "/dev/sdz"),
        ("pvmove --abort",),  # once: not again after the pvmove exited
        ("dmsetup info",),
        ("lvchange -ay", "vg-x/gone"),
        ("lvchange --refresh", "vg-x/held"),
        ("lvchange --refresh", "vg-x/my-lv"),
    ]
    assert engine.refreshed == 1


async def test_a_volume_whose_node_is_missing_is_refreshed(tmp_path, monkeypatch):
    lvm = FakeLvm(tmp_path, {"vg-fv": "L--w", "vg-other": "L--w"})
    engine = Engine(lvm)
    pool = SimpleNamespace(name="p", vg_name="vg", volumes={"fv": volume("fv"), "other": volume("other")})
    waited = []

    async def node_appears(path, wait):
        waited.append((path, wait))
        return path != "/dev/vg/fv"
    monkeypatch.setattr(physical, "_node_appears", node_appears)
    await engine._ensure_live(pool, ["fv", "other"])
    assert lvm.calls == [("dmsetup info",), ("lvchange --refresh", "vg/fv")]
    assert waited == [("/dev/vg/fv", physical.NODE_WAIT), ("/dev/vg/other", physical.NODE_WAIT)]


async def test_without_activation_nothing_is_looked_at(tmp_path):
    lvm = FakeLvm(tmp_path, {})
    engine = Engine(lvm)
    engine.activation = False
    await engine._ensure_live(SimpleNamespace(name="p", vg_name="vg", volumes={}), ["fv"])
    assert lvm.calls == []


async def test_a_failed_move_is_aborted_after_the_pvmove_ended(tmp_path, monkeypatch):
    """pvmove failing on its own (not cancelled): the abort runs after it."""
    lvm = FakeLvm(tmp_path, {"vg-fv": "L--w"})

    async def failing(device, on_progress, on_cancel=None):
        lvm.calls.append(("pvmove", device))
        await runner.run_lines(["sh", "-c", "echo no >&2; exit 5"], lambda line: None,
                               on_cancel=on_cancel)
    lvm.pvmove = failing
    engine = Engine(lvm)
    pool = SimpleNamespace(name="p", vg_name="vg", volumes={"fv": volume("fv")})

    async def node_appears(path, wait):
        return True
    monkeypatch.setattr(physical, "_node_appears", node_appears)
    try:
        await engine._move_off(pool, "/dev/sdz", SimpleNamespace(set_progress=lambda p: None))
    except runner.CommandFailed:
        pass
    else:
        raise AssertionError("the failed move did not fail")
    assert lvm.calls == [("pvmove", "/dev/sdz"), ("pvmove --abort",), ("dmsetup info",)]


async def test_a_second_cancel_of_a_stopping_job_does_not_interrupt_its_stop():
    """Cancel() twice (a client that clicks again): the Job is cancelled once,
    so the abort under way is not killed."""
    from storaged.engine.jobs import Jobs
    interrupted, stopped = [], asyncio.Event()

    async def work(job):
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            try:
                await asyncio.sleep(0.3)  # the abort
            except asyncio.CancelledError:
                interrupted.append(1)
            stopped.set()
            raise
    job = Jobs().start("move", 0, work)
    await asyncio.sleep(0.05)
    assert job.cancel() is True
    await asyncio.sleep(0.05)
    assert job.cancel() is True  # accepted, not repeated
    await asyncio.wait_for(stopped.wait(), 5)
    await asyncio.sleep(0.05)
    assert interrupted == []
    assert job.completed and job.error_kind == "Cancelled"
    assert job.cancel() is False


async def test_what_follows_the_move_runs_to_its_end_whatever_a_cancel_says():
    """vgreduce, the PV's label, its source, the definition: cancelled half-way
    it left the definition naming a PV the VG no longer had (test_fuzz's Cancel
    case, under load). A cancel then is too late: the Job ends done."""
    from storaged.engine.jobs import Jobs
    from storaged.engine.physical import to_the_end
    steps = []

    async def rest():
        for step in ("vgreduce", "pvremove", "definition saved"):
            await asyncio.sleep(0.1)
            steps.append(step)
        return "removed"

    async def work(job):
        assert await to_the_end(rest()) == "removed"
    job = Jobs().start("remove", 0, work)
    await asyncio.sleep(0.15)
    assert job.cancel() is True
    for _ in range(50):
        if job.completed:
            break
        await asyncio.sleep(0.05)
    assert steps == ["vgreduce", "pvremove", "definition saved"]
    assert job.completed and job.error == "" and job.progress == 1.0
