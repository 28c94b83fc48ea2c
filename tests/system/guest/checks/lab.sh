# Checks of the lab itself: they prove the guest can do what the product
# needs (device-mapper, LVM activation, a second disk, iSCSI, NFS) without
# anything of storaged installed.

lab_boot_finished() {
    local st
    st=$(cat /run/storaged-lab-system-state)
    systemd-analyze || true
    case "$st" in
        running) ;;
        degraded)
            systemctl --failed --no-legend --plain
            info "boot finished degraded; failed units: $(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')" ;;
        *) fail "systemctl is-system-running --wait: $st" ;;
    esac
}

lab_device_mapper() {
    [ -c /dev/mapper/control ] || fail "/dev/mapper/control is not a character device"
    dmsetup version
}

# A scratch VG on a loop file: lvcreate activates, /dev/VG/LV appears and
# holds data; everything is removed again.
lab_lvm_on_loop() {
    # Globals, not locals: the EXIT trap needs them (each check has its own shell).
    vg="labvg_$RANDOM$RANDOM"
    file="/var/tmp/$vg.img"
    dev=""
    # shellcheck disable=SC2064
    trap "set +eu; vgremove -ff -y $vg >/dev/null 2>&1; [ -z \"\$dev\" ] || { pvremove -ff -y \"\$dev\" >/dev/null 2>&1; losetup -d \"\$dev\"; }; rm -f $file" EXIT
    truncate -s 64M "$file"
    dev=$(losetup --find --show "$file")
    pvcreate -q "$dev"
    vgcreate -q "$vg" "$dev"
    lvcreate -q -y -L 8M -n lv "$vg"
    udevadm settle --timeout=30 || true
    wait_block "/dev/$vg/lv" 20
    dd if=/dev/urandom of="$file.data" bs=64K count=1 status=none
    dd if="$file.data" of="/dev/$vg/lv" bs=64K count=1 oflag=direct conv=fsync status=none
    dd if="/dev/$vg/lv" bs=64K count=1 iflag=direct status=none | cmp - "$file.data"
    rm -f "$file.data"
    lvchange -an "$vg/lv"
    udevadm settle --timeout=30 || true
    [ ! -e "/dev/$vg/lv" ] || fail "/dev/$vg/lv still there after lvchange -an"
    vgremove -q -ff -y "$vg"
    pvremove -q -y "$dev"
    losetup -d "$dev"
    dev=""
    rm -f "$file"
    [ -z "$(loop_of "$file")" ] || fail "a loop device is still bound to $file"
}

# The second virtual disk is there, 256 MiB, and (boot 1) carries no signature.
lab_data_disk_blank() {
    [ -b /dev/vdb ] || fail "/dev/vdb is not a block device"
    local size rc=0
    size=$(blockdev --getsize64 /dev/vdb)
    [ "$size" = 268435456 ] || fail "/dev/vdb has $size bytes, expected 268435456"
    blkid -p /dev/vdb || rc=$?
    [ "$rc" = 2 ] || fail "/dev/vdb is not blank (blkid -p status $rc)"
}

# tgt serves a file LUN on 127.0.0.1, open-iscsi logs in, the LUN holds data.
lab_iscsi_loopback() {
    local file=/var/tmp/lab-iscsi-lun.img iqn dev size
    trap 'set +eu; iscsi_logout "$LAB_IQN_PREFIX:labcheck" 2>/dev/null; tgt_remove "$LAB_IQN_PREFIX:labcheck" 2>/dev/null; tgt_stop; rm -f /var/tmp/lab-iscsi-lun.img /var/tmp/lab-iscsi.data' EXIT
    tgt_start
    iqn=$(tgt_add_lun labcheck "$file" 32M)
    dev=$(iscsi_login "$iqn")
    echo "LUN 1 of $iqn is $dev"
    size=$(blockdev --getsize64 "$dev")
    [ "$size" = 33554432 ] || fail "$dev has $size bytes, expected 33554432"
    dd if=/dev/urandom of=/var/tmp/lab-iscsi.data bs=64K count=1 status=none
    dd if=/var/tmp/lab-iscsi.data of="$dev" bs=64K count=1 oflag=direct conv=fsync status=none
    cmp -n 65536 "$file" /var/tmp/lab-iscsi.data || fail "data written to $dev is not in the LUN's file"
    iscsi_logout "$iqn"
    wait_for 20 "$dev to go away after logout" test ! -b "$dev"
}

# An NFS export of a guest folder, mounted over 127.0.0.1 with vers=4.2.
lab_nfs_loopback() {
    local dir=/srv/storaged-lab-nfs mnt=/mnt/storaged-lab-nfs
    trap 'set +eu; umount /mnt/storaged-lab-nfs 2>/dev/null; nfs_export_stop /srv/storaged-lab-nfs; rm -rf /srv/storaged-lab-nfs' EXIT
    nfs_export_start "$dir"
    nfs_mount "$dir" "$mnt"
    grep " $mnt nfs4 " /proc/mounts
    grep " $mnt nfs4 .*vers=4.2" /proc/mounts > /dev/null || fail "$mnt is not mounted with vers=4.2"
    echo "written over NFS" > "$mnt/probe"
    sync
    [ "$(cat "$dir/probe")" = "written over NFS" ] || fail "a file written over NFS is not in the export"
    nfs_unmount "$mnt"
}
