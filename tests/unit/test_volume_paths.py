"""A pool's Volumes property is kept sorted by what came and went, not made
again from 10,000 volumes at each change; it must stay what a sort gives."""
import random
import uuid

from storaged.api import _volume_paths, volume_path
from storaged.model.definitions import PoolDef
from storaged.model.state import Pool


def test_volume_paths_follow_every_change_and_never_alter_a_list_handed_out():
    pool = Pool(definition=PoolDef(name="p", uuid=str(uuid.uuid4())))
    rng = random.Random(7)
    handed_out = []
    for step in range(300):
        if pool.volumes and rng.random() < 0.4:
            for key in rng.sample(sorted(pool.volumes), k=min(len(pool.volumes), rng.choice([1, 1, 3]))):
                del pool.volumes[key]
        else:
            for _ in range(rng.choice([1, 1, 2, 100])):  # 100: the rebuild path
                pool.volumes[str(uuid.uuid4())] = None
        paths = _volume_paths(pool)
        assert paths == sorted(volume_path(pool.uuid, u) for u in pool.volumes), step
        handed_out.append((paths, list(paths)))
    assert all(given == copy for given, copy in handed_out)
