"""Volume objects are exported when first used (bus/service.py): nothing a
client does can tell. Each test starts a second daemon on the same pool, so
that no volume object exists until a call reaches it."""
from tests.harness import MANAGER, MGR, POOL, VOL, MiB, busctl

ROOT = "/org/storaged/Storaged1"


async def restarted_with_volumes(world, client, tag, names):
    first = world.daemon()
    name = f"{world.prefix}{tag}"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(name, (f"{tag}.img", "32M"))])
    paths = [await client.call(pool, POOL, "AllocateVolume", "sta{sv}", [n, 4 * MiB, {}]) for n in names]
    first.stop()
    world.daemon()
    return name, pool, paths


async def test_a_volume_not_yet_exported_answers_calls_and_properties(world, client):
    name, pool, [a, b] = await restarted_with_volumes(world, client, "lazy", ["a", "b"])
    assert await client.get(a, VOL, "Name") == "a"
    assert "<name>b</name>" in await client.call(b, VOL, "GetXML")
    props = await client.get_all(b, VOL)
    assert props["Capacity"] == 4 * MiB and props["Path"] == f"/dev/{name}/b"
    await client.call(b, VOL, "Delete")
    assert await client.get(pool, POOL, "Volumes") == [a]
    # A path that is no volume is still unknown.
    gone = busctl(world.address, "get-property", "org.storaged.Storaged1", b, VOL, "Name")
    assert gone.returncode != 0



async def test_the_tree_and_introspection_show_volumes_never_used(world, client):
    name, pool, paths = await restarted_with_volumes(world, client, "tree", ["t1", "t2", "t3"])
    tree = busctl(world.address, "tree", "--list", "org.storaged.Storaged1", check=True).stdout.split()
    assert set(paths) <= set(tree), tree
    node = pool + "/volumes"
    xml = await client.call(node, "org.freedesktop.DBus.Introspectable", "Introspect")
    for p in paths:
        assert f'<node name="{p.rsplit("/", 1)[1]}"' in xml, xml
