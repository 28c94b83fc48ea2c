# storaged VM lab, guest side: servers for remote physical volumes, on the
# guest's loopback only (127.0.0.1). Sourced by lib.sh.
#
# iSCSI: tgt (userspace target) serves file-backed LUNs; open-iscsi logs in.
#   tgt_start
#   iqn=$(tgt_add_lun NAME FILE SIZE)     # a new target with LUN 1 on FILE
#   dev=$(iscsi_login "$iqn")             # /dev/sdX of LUN 1
#   iscsi_logout "$iqn"; tgt_remove "$iqn"; tgt_stop
# NFS: nfs-kernel-server exports a folder to 127.0.0.1; clients mount vers=4.2.
#   nfs_export_start DIR
#   nfs_mount DIR MOUNTPOINT
#   nfs_unmount MOUNTPOINT; nfs_export_stop DIR
# Neither server starts at boot (the image disables them): a check starts
# what it needs and stops it again.

LAB_IQN_PREFIX=iqn.2026-01.org.storaged.lab
LAB_PORTAL=127.0.0.1:3260
LAB_EXPORTS=/etc/exports.d/storaged-lab.exports

tgt_start() {
    systemctl start tgt.service
    wait_for 30 "tgtd to answer" tgtadm --lld iscsi --mode target --op show
}

tgt_stop() {
    systemctl stop tgt.service
}

# The tid of target IQN, if it exists.
tgt_tid_of() {
    tgtadm --lld iscsi --mode target --op show \
        | awk -v iqn="$1" '$1 == "Target" && $3 == iqn { sub(":", "", $2); print $2 }'
}

# tgt_add_lun NAME FILE SIZE: prints the new target's IQN.
tgt_add_lun() {
    local name=$1 file=$2 size=$3 iqn tid
    iqn="$LAB_IQN_PREFIX:$name"
    tid=$(tgtadm --lld iscsi --mode target --op show | awk '$1 == "Target" { sub(":", "", $2); if ($2 > m) m = $2 } END { print m + 1 }')
    mkdir -p "$(dirname "$file")"
    [ -e "$file" ] || truncate -s "$size" "$file"
    tgtadm --lld iscsi --mode target --op new --tid "$tid" --targetname "$iqn" >&2
    tgtadm --lld iscsi --mode logicalunit --op new --tid "$tid" --lun 1 --backing-store "$file" >&2
    tgtadm --lld iscsi --mode target --op bind --tid "$tid" --initiator-address 127.0.0.1 >&2
    echo "$iqn"
}

tgt_remove() {
    local tid
    tid=$(tgt_tid_of "$1")
    [ -z "$tid" ] || tgtadm --lld iscsi --mode target --op delete --force --tid "$tid"
}

# iscsi_login IQN: logs in to LUN 1 of IQN on the loopback portal, prints its device.
iscsi_login() {
    local iqn=$1 link
    link="/dev/disk/by-path/ip-$LAB_PORTAL-iscsi-$iqn-lun-1"
    modprobe iscsi_tcp
    systemctl start iscsid.service
    iscsiadm -m discovery -t sendtargets -p "$LAB_PORTAL" >&2
    iscsiadm -m node -T "$iqn" -p "$LAB_PORTAL" --login >&2
    udevadm settle --timeout=30 || true
    wait_for 30 "$link" test -b "$link"
    readlink -f "$link"
}

iscsi_logout() {
    local iqn=$1
    iscsiadm -m node -T "$iqn" -p "$LAB_PORTAL" --logout >&2 || true
    iscsiadm -m node -o delete -T "$iqn" -p "$LAB_PORTAL" >&2 || true
}

nfs_export_start() {
    local dir=$1
    mkdir -p "$dir" /etc/exports.d
    echo "$dir 127.0.0.1(rw,sync,no_subtree_check,no_root_squash)" >> "$LAB_EXPORTS"
    systemctl start nfs-server.service
    exportfs -ra
}

nfs_mount() {
    local dir=$1 mnt=$2
    mkdir -p "$mnt"
    mount -t nfs -o vers=4.2 "127.0.0.1:$dir" "$mnt"
}

nfs_unmount() {
    umount "$1"
}

# nfs_export_stop DIR: drops DIR's export; stops the server when none is left.
nfs_export_stop() {
    local dir=$1
    if [ -f "$LAB_EXPORTS" ]; then
        grep -v "^$dir " "$LAB_EXPORTS" > "$LAB_EXPORTS.new" || true
        mv "$LAB_EXPORTS.new" "$LAB_EXPORTS"
        [ -s "$LAB_EXPORTS" ] || rm -f "$LAB_EXPORTS"
    fi
    exportfs -ra
    [ -f "$LAB_EXPORTS" ] || systemctl stop nfs-server.service
}
