#!/bin/bash
# Build the VM lab's Debian 12 guest image.
#
#   build.sh OUTDIR
#
# Writes into OUTDIR (which must exist and be empty):
#   root.raw     sparse raw disk: one ext4 file system, no partition table
#   vmlinuz      the guest kernel, for qemu -kernel
#   initrd.img   its initramfs (MODULES=list: virtio + ext4 only)
#
# Nothing is mounted on the host and no loop device is used: mmdebstrap builds
# the tree in a private mount namespace and mkfs.ext4 -d turns it into a disk.
# The host's own apt sources file is the mirror argument; it is deleted from
# the guest afterwards so that no mirror host name is left in the image.
#
# Every file in this folder (image/) is an input of the image cache key in
# run.sh: edit any of them and the next run rebuilds.
#
# Internal modes, used as mmdebstrap hooks: build.sh --essential-hook ROOT,
# build.sh --customize-hook ROOT.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Sparse: the guest's default pool image (10 GiB, sparse) fits; blocks are
# only used as they are written. A constant, so that it is part of the cache key.
ROOT_SIZE=6G
SUITE=bookworm

# Runs before any package is configured: the kernel's initramfs is then built
# once, small (11 MB instead of 40) and fast.
essential_hook() {
    local root=$1
    mkdir -p "$root/etc/initramfs-tools/conf.d"
    printf '%s\n' virtio_pci virtio_blk ext4 > "$root/etc/initramfs-tools/modules"
    printf 'MODULES=list\nCOMPRESS=zstd\n' > "$root/etc/initramfs-tools/conf.d/storaged-lab.conf"
}

# Runs in the finished tree (chroot mounts in place).
customize_hook() {
    local root=$1
    # No mirror host name may stay in the image: drop every apt source and list.
    rm -f "$root/etc/apt/sources.list"
    rm -f "$root"/etc/apt/sources.list.d/*
    rm -rf "$root"/var/lib/apt/lists/*
    rm -f "$root/etc/resolv.conf"

    echo storaged-lab > "$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tstoraged-lab\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
        > "$root/etc/hosts"
    printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t1\n' > "$root/etc/fstab"
    # A fixed machine id for the image: no first-boot logic, stable journal.
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$root/etc/machine-id"
    echo >> "$root/etc/machine-id"

    # The generic agent: mounts the per-run 9p share and runs the checks from it.
    install -D -m 0755 "$here/lab-agent" "$root/usr/local/libexec/storaged-lab/lab-agent"
    install -D -m 0644 "$here/storaged-lab-agent.service" \
        "$root/etc/systemd/system/storaged-lab-agent.service"
    chroot "$root" systemctl enable storaged-lab-agent.service

    # Servers the checks start themselves when they need them: not at boot.
    local unit
    for unit in tgt.service nfs-server.service nfs-kernel-server.service rpcbind.service \
                rpcbind.socket iscsid.socket iscsid.service open-iscsi.service \
                e2scrub_reap.service e2scrub_all.timer fstrim.timer; do
        if [ -e "$root/lib/systemd/system/$unit" ]; then
            chroot "$root" systemctl disable "$unit" >/dev/null 2>&1 || true
        fi
    done
    # The guest has no network: nothing waits for it.
    chroot "$root" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
}

# The host names of the mirrors named in the given apt sources files.
mirror_hosts() {
    sed -nE 's#^[[:space:]]*(URIs:|deb(-src)?[[:space:]]+(\[[^]]*\][[:space:]]+)?)[[:space:]]*##p' "$@" \
        | tr ' ' '\n' | sed -nE 's#^[a-z+]+://([^/:]+).*#\1#p' | sort -u
}

# The host's Debian sources files: the mirror arguments for mmdebstrap.
host_sources() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && grep -qE "^Suites:.*\b$SUITE\b" "$f" && echo "$f"
    done
    if [ -f /etc/apt/sources.list ] && grep -qE "^deb .*\b$SUITE\b" /etc/apt/sources.list; then
        echo /etc/apt/sources.list
    fi
}

build() {
    local out=$1
    [ -d "$out" ] || { echo "build.sh: $out is not a folder" >&2; exit 2; }
    local root="$out/rootfs"
    mkdir "$root"

    local -a sources packages
    mapfile -t sources < <(host_sources)
    [ ${#sources[@]} -gt 0 ] || { echo "build.sh: no apt sources file for $SUITE on this host" >&2; exit 2; }
    mapfile -t packages < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$here/packages.txt")
    local include
    include=$(IFS=,; echo "${packages[*]}")

    echo "mmdebstrap: ${#packages[@]} packages, variant essential"
    # A private mount namespace: whatever mmdebstrap mounts in the chroot
    # disappears with it, even if it is killed.
    unshare --mount --propagation private \
        mmdebstrap --mode=root --variant=essential --format=directory \
        --include="$include" \
        --essential-hook="'$here/build.sh' --essential-hook \"\$1\"" \
        --customize-hook="'$here/build.sh' --customize-hook \"\$1\"" \
        "$SUITE" "$root" "${sources[@]}"

    # Prove that no mirror host name made it into the image.
    local host leaks=0
    while read -r host; do
        [ -n "$host" ] || continue
        if grep -rIlF --exclude-dir=proc --exclude-dir=sys -e "$host" "$root/etc" "$root/var" "$root/root" 2>/dev/null | head -5 | grep -q .; then
            echo "build.sh: a mirror host name is left in the image (files under etc/ var/ root/)" >&2
            leaks=1
        fi
    done < <(mirror_hosts "${sources[@]}")
    [ "$leaks" = 0 ] || exit 1

    local kernel initrd
    kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
    initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)
    cp "$kernel" "$out/vmlinuz"
    cp "$initrd" "$out/initrd.img"

    echo "mkfs.ext4: $ROOT_SIZE root file system from the tree"
    mkfs.ext4 -q -F -L storaged-lab -d "$root" "$out/root.raw" "$ROOT_SIZE"
    rm -rf "$root"
}

case "${1:-}" in
    --essential-hook) essential_hook "$2" ;;
    --customize-hook) customize_hook "$2" ;;
    -*|"") echo "usage: build.sh OUTDIR" >&2; exit 2 ;;
    *) build "$1" ;;
esac
