# The check plan: what runs at each boot, in order. Sourced by agent.sh.
#
#   check NAME FUNCTION [TIMEOUT_SECONDS]
#
# NAME is reported as PHASE.NAME (boot1.storaged.start); FUNCTION is defined
# in checks/*.sh (lab.sh: the lab itself; package.sh: the .deb installed,
# upgraded, removed, purged; storaged.sh: the product; faults.sh: faults
# injected for real). The default timeout is 90 s.
# To add a check: write the function, add a line here. Later checks can read
# what earlier ones recorded with state_need (state survives the reboot).
# Helpers: lib.sh (bus_call, bus_get, wait_for, write_pattern, ...) and
# remote.sh (tgt_start/tgt_add_lun/iscsi_login, nfs_export_start/nfs_mount).

plan_boot1() {
    # The lab itself, before anything of storaged is installed.
    check lab.boot-finished           lab_boot_finished
    check lab.device-mapper           lab_device_mapper
    check lab.lvm-on-loop             lab_lvm_on_loop
    check lab.data-disk               lab_data_disk_blank
    check lab.iscsi-loopback          lab_iscsi_loopback          120
    check lab.nfs-loopback            lab_nfs_loopback            120

    # Install storaged's previous .deb as a user would (apt install ./storaged_*.deb).
    check package.install             package_install_previous    300

    # storaged.
    check storaged.start              storaged_start              120
    check storaged.unit-verify        storaged_unit_verify
    check storaged.default-pool       storaged_default_pool       120
    check storaged.vol1-allocate      storaged_default_volume     180
    check storaged.vol1-data          storaged_default_volume_data
    check package.upgrade             package_upgrade             300
    check storaged.security-score     storaged_security_score
    check storaged.polkit             storaged_polkit             120
    check storaged.multi-create       storaged_create_pool_multi  300
    check storaged.multi-pvs          storaged_multi_pvs
    check storaged.multi-autostart    storaged_multi_autostart
    check storaged.vol2-allocate      storaged_multi_volume       180
    check storaged.vol2-data          storaged_multi_volume_data
    check storaged.loop-devices       storaged_loop_devices
    check storaged.iscsi-pool         storaged_iscsi_pool         180
    check storaged.vol3-iscsi         storaged_iscsi_volume       180
    check storaged.iscsi-chap         storaged_iscsi_chap         240
    check storaged.nfs-pool           storaged_nfs_pool           180
    check storaged.vol4-nfs           storaged_nfs_volume         180
    check storaged.dbus-activation    storaged_dbus_activation    120
    check jobs.pvmove                 storaged_jobs_pvmove        300
    check jobs.resize                 storaged_jobs_resize        120
    check jobs.wipe                   storaged_jobs_wipe          120
    # Faults injected for real (faults.sh): a PV failing under a running pool;
    # a pvmove and a Wipe cancelled half-way on a PV slowed down by the delay
    # target (each check makes its own pool and removes it).
    check faults.pv-io-errors         faults_pv_io_errors         240
    check faults.cancel               faults_cancel               300
    check thin.pool                   storaged_thin_pool          180
    check thin.snapshots              storaged_thin_snapshots     180
    check thin.clones                 storaged_thin_clones        240
    check thin.rename                 storaged_thin_rename
    check thin.open                   storaged_thin_open          120
    check thin.transfer               storaged_thin_transfer      240
    check thin.bench                  storaged_thin_bench         300
    check storaged.net-pools-stop     storaged_net_pools_stop     120
}

plan_boot2() {
    check lab.boot-finished           lab_boot_finished
    check lab.device-mapper           lab_device_mapper

    check storaged.active             storaged_active_at_boot
    check storaged.before-multi-user  storaged_before_multi_user
    check storaged.critical-chain     storaged_critical_chain
    check storaged.net-pools-back     storaged_net_pools_back     150
    check storaged.pools-running      storaged_autostart_pools_running 120
    check storaged.loop-devices       storaged_loop_devices
    check storaged.volumes-active     storaged_volumes_active
    check storaged.object-paths       storaged_object_paths_stable
    check storaged.vol1-data          storaged_vol1_readback
    check storaged.vol2-data          storaged_vol2_readback
    check storaged.vol3-data          storaged_vol3_readback
    check storaged.vol4-data          storaged_vol4_readback
    check thin.after-reboot           storaged_thin_after_reboot  180
    check storaged.outside-activation storaged_outside_activation
    check storaged.shutdown-unit      storaged_shutdown_unit
    # The system bus restarted under the daemon: it exits non-zero, systemd
    # restarts it, every pool as it was (the checks after it use the new bus).
    check faults.bus-restart          faults_bus_restart          180
    # The package goes and comes back; pools, definitions and data stay.
    check package.remove              package_remove              180
    check package.purge               package_purge               180
    check package.reinstall           package_reinstall           300
    # The network pools stay up: the poweroff after this boot must take them
    # down before the servers and the network go (storaged-network-pools.service;
    # LVs left active on them would hang the shutdown for minutes). run.sh
    # checks that from the console (boot2.shutdown).
}

# ---------------------------------------------------------------- the shared stage
# Two guests at once (checks/shared.sh): pair 1 is shared-a + shared-b, pair 2
# shared-a2 (A after its crash) + shared-b2 (B rebooted). A check of the same
# name runs on both hosts and meets the other at barriers (share/sync/). The
# first pair's two plans must keep the same checks in the same order.

plan_shared_pair1() {
    check lab.boot-finished           lab_boot_finished
    check lab.shared-disk             lab_shared_disk             150
    check shared.setup                shared_setup                300
    check lab.shared-lvm              lab_shared_lvm              240
    check shared.pool                 shared_pool                 320
    check shared.visibility           shared_visibility           150
    check shared.api                  shared_api                  120
    check shared.exclusive            shared_exclusive            150
    check shared.shared-activation    shared_shared_activation    180
    check shared.concurrent           shared_concurrent           480
    check shared.bench                shared_bench                360
    check shared.failover             shared_failover             420
}
plan_shared_a() { plan_shared_pair1; }   # then finish_shared_a: killed by the host
plan_shared_b() { plan_shared_pair1; }   # then powers off with the pool running

plan_shared_a2() {
    check lab.boot-finished           lab_boot_finished
    check shared.after-crash          shared_after_crash          240
}
plan_shared_b2() {
    check lab.boot-finished           lab_boot_finished
    check shared.after-reboot         shared_after_reboot         200
}

# Run by agent.sh after shared-a's results are written: A holds volume fo
# (shared.failover); the host kills this guest when it sees the file. Bounded:
# if nobody kills it, the agent ends and the guest powers off.
finish_shared_a() {
    echo ready > "$SYNC/a-failover-ready"
    serial "LAB shared-a: waiting to be killed (failover)"
    sleep 300
}
