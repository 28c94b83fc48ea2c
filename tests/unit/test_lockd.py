"""lvmlockd's view of the locks this host holds, read as `lvmlockctl --info` prints it."""
from storaged.lvm.lockd import LV_HELD_ELSEWHERE, VG_HELD_ELSEWHERE, lv_key, parse_info

INFO = """\
VG shared1 lock_type=sanlock r2x1Xe-aaaa-bbbb-cccc-dddd-eeee-ffffff
LS sanlock lvm_shared1
LK VG un ver 7
LK LV ex Jm7Lz3-1111-2222-3333-4444-5555-666666
LK LV sh 0fW2aQ-1111-2222-3333-4444-5555-777777
LK LV un 9zzzzz-1111-2222-3333-4444-5555-888888

VG other lock_type=sanlock q1
LS sanlock lvm_other
LK GL sh ver 2 pid 812 (lvchange)
"""


def test_lock_modes_per_vg_and_lv():
    spaces = parse_info(INFO)
    assert sorted(spaces) == ["other", "shared1"]
    locks = spaces["shared1"].lv_locks
    assert locks == {lv_key("Jm7Lz3-1111-2222-3333-4444-5555-666666"): "ex",
                     lv_key("0fW2aQ-1111-2222-3333-4444-5555-777777"): "sh"}
    assert spaces["other"].lv_locks == {} and spaces["other"].lock_type == "sanlock"


def test_nothing_started_is_no_lockspace():
    assert parse_info("") == {}


def test_lvm_s_words_for_a_lock_held_elsewhere():
    # lib/locking/lvmlockd.c (lvm2 2.03.16)
    assert LV_HELD_ELSEWHERE.search("  LV locked by other host: vg1/v1")
    assert VG_HELD_ELSEWHERE.search("  VG vg1 lock failed: held by other host.")
    assert VG_HELD_ELSEWHERE.search("  Global lock failed: held by other host.")
    assert not VG_HELD_ELSEWHERE.search("  LV locked by other host: vg1/v1")
