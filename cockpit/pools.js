/* The pool list: one card per pool (state, capacity, sources, autostart,
   lifecycle actions) and the jobs in progress. */
import { h, alert, button, formatBytes, label, percent, progressBar } from "./dom.js";
import { IFACE } from "./model.js";
import { confirmDialog } from "./dialogs.js";

const STATE_COLOURS = { running: "green", degraded: "orange", failed: "red", inactive: "grey" };
const NOT_ADMIN = "Needs administrative access";

export function stateLabel(pool) {
    return label(pool.State || "unknown", STATE_COLOURS[pool.State] || "grey");
}

// Allocated of capacity, and the thin overcommit where the daemon reports a thin pool.
export function capacityBars(model, pool) {
    const id = "capacity-" + pool.Name;
    const used = pool.Allocation || 0;
    const capacity = pool.Capacity || 0;
    const bars = [progressBar(id, capacity ? used / capacity : 0,
                              `${formatBytes(used)} of ${formatBytes(capacity)} allocated, ` +
                              `${formatBytes(pool.Available || 0)} free`,
                              percent(used, capacity) + " %",
                              percent(used, capacity) >= 90 ? "danger" : null)];
    if (model.has(IFACE.pool, "VirtualAllocation") && pool.ThinPoolSize) {
        const thin = pool.VirtualAllocation || 0;
        bars.push(progressBar(id + "-thin", Math.min(1, thin / pool.ThinPoolSize),
                              `thin: ${formatBytes(thin)} promised in a ${formatBytes(pool.ThinPoolSize)} thin pool` +
                              (thin > pool.ThinPoolSize ? ` (${(thin / pool.ThinPoolSize).toFixed(1)}x overcommitted)` : ""),
                              percent(thin, pool.ThinPoolSize) + " %",
                              thin > pool.ThinPoolSize ? "warning" : null));
    }
    return h("div", { class: "capacity" }, bars);
}

function sourceList(model, pool) {
    const sources = model.sources(pool);
    const devices = pool.PhysicalVolumes || [];
    if (!sources.length && !devices.length)
        return h("span", { class: "muted" }, "none");
    const items = sources.length
        ? sources.map(s => h("li", {}, label(s.kind, "blue"), " ", h("span", { class: "source" }, s.what)))
        : devices.map(d => h("li", {}, d));
    return h("ul", { class: "pf-c-list pf-m-plain sources", id: "sources-" + pool.Name }, items,
             devices.length ? h("li", { class: "muted" }, "on " + devices.join(", ")) : null);
}

function autostartSwitch(ui, model, pool) {
    const id = "autostart-" + pool.Name;
    const input = h("input", {
        class: "pf-c-switch__input", type: "checkbox", id, checked: pool.Autostart,
        disabled: !model.admin, "aria-label": "Autostart " + pool.Name,
        onchange: event => ui.act("pool:" + pool.Name, model.call(pool.path, IFACE.pool, "SetAutostart",
                                                                    [event.target.checked]))
    });
    return h("label", { class: "pf-c-switch", for: id, title: model.admin ? null : NOT_ADMIN }, input,
             h("span", { class: "pf-c-switch__toggle" }),
             h("span", { class: "pf-c-switch__label" }, "Autostart"));
}

function poolActions(ui, model, pool) {
    const disabled = !model.admin;
    const title = disabled ? NOT_ADMIN : undefined;
    const key = "pool:" + pool.Name;
    const call = (method) => ui.act(key, model.call(pool.path, IFACE.pool, method));
    const started = pool.State === "running" || pool.State === "degraded";
    return h("div", { class: "pool-actions" },
             autostartSwitch(ui, model, pool),
             started
                 ? button("Stop", () => call("Stop"), { disabled, title, id: "stop-" + pool.Name })
                 : button("Start", () => call("Start"), { disabled, title, id: "start-" + pool.Name }),
             button("Delete", () => confirmDialog({
                 id: "dialog-delete-pool", title: `Delete pool ${pool.Name}?`, primary: "Delete",
                 message: `The volume group ${pool.VolumeGroup} with all its volumes, and the files ` +
                          `this pool created, are destroyed. Devices are left alone.`,
                 submit: () => model.call(pool.path, IFACE.pool, "Delete"),
             }), { variant: "secondary pf-m-danger", disabled, title, id: "delete-" + pool.Name }),
             button("Undefine", () => confirmDialog({
                 id: "dialog-undefine-pool", title: `Undefine pool ${pool.Name}?`, primary: "Undefine",
                 message: "storaged forgets the definition; the storage itself is left as it is.",
                 submit: () => model.call(pool.path, IFACE.pool, "Undefine"),
             }), { variant: "link", disabled: disabled || started, title, id: "undefine-" + pool.Name }));
}

export function poolCard(ui, model, pool, { link = true } = {}) {
    const volumes = model.volumesOf(pool).length;
    const nameNode = link
        ? h("a", { href: "#/pool/" + encodeURIComponent(pool.Name), class: "pool-link" }, pool.Name)
        : pool.Name;
    return h("article", { class: "pf-c-card pool-card", id: "pool-" + pool.Name },
             h("div", { class: "pf-c-card__header" },
               h("div", { class: "pf-c-card__actions" }, poolActions(ui, model, pool)),
               h("div", { class: "pf-c-card__title" },
                 h("h2", { class: "pf-c-title pf-m-lg pool-title" }, nameNode, " ", stateLabel(pool)))),
             h("div", { class: "pf-c-card__body" },
               pool.StateReason ? alert(pool.StateReason, { variant: "warning", title: "Pool is " + pool.State }) : null,
               h("div", { class: "pool-grid" },
                 capacityBars(model, pool),
                 h("dl", { class: "pf-c-description-list pf-m-horizontal pf-m-compact" },
                   term("Volume group", pool.VolumeGroup),
                   model.has(IFACE.pool, "Shared") ? term("Hosts", sharing(pool)) : null,
                   term("Volumes", link
                       ? h("a", { href: "#/pool/" + encodeURIComponent(pool.Name) }, String(volumes))
                       : String(volumes)),
                   term("Physical volumes", sourceList(model, pool)))),
               ui.errorFor("pool:" + pool.Name)));
}

// A shared pool's volumes are locked through lvmlockd: each host activates
// what its guests use (docs/shared-pools.md).
function sharing(pool) {
    return pool.Shared
        ? `shared between hosts (${pool.LockType} locks; this host's host_id ${pool.HostId || "not set"})`
        : "this host only";
}

function term(name, value) {
    return h("div", { class: "pf-c-description-list__group" },
             h("dt", { class: "pf-c-description-list__term" },
               h("span", { class: "pf-c-description-list__text" }, name)),
             h("dd", { class: "pf-c-description-list__description" },
               h("div", { class: "pf-c-description-list__text" }, value)));
}

export function jobsCard(ui, model) {
    const jobs = model.jobList();
    if (!jobs.length)
        return null;
    return h("article", { class: "pf-c-card", id: "jobs" },
             h("div", { class: "pf-c-card__title" }, h("h2", { class: "pf-c-title pf-m-lg" }, "Jobs")),
             h("div", { class: "pf-c-card__body" }, jobs.map(job => {
                 const id = "job-" + job.path.split("/").pop();
                 const failed = job.Completed && job.Error;
                 const status = failed ? "failed" : job.Completed ? "done" : Math.round(100 * job.Progress) + " %";
                 return h("div", { class: "job", id },
                          progressBar(id + "-progress", job.Completed && !failed ? 1 : job.Progress || 0,
                                      job.Operation, status, failed ? "danger" : job.Completed ? "success" : null),
                          job.Completed
                              ? (failed ? alert(job.Error, { id: id + "-error" }) : null)
                              : button("Cancel", () => ui.act("job:" + job.path, model.call(job.path, IFACE.job, "Cancel")),
                                       { disabled: !model.admin, title: model.admin ? null : NOT_ADMIN, id: id + "-cancel" }),
                          ui.errorFor("job:" + job.path));
             })));
}

export function readOnlyNotice(model) {
    if (model.admin)
        return null;
    return alert("You can see the pools but not change them. Turn on administrative access to make changes.",
                 { variant: "info", title: "Read-only", id: "read-only" });
}

export function poolListPage(ui, model) {
    const pools = model.poolList();
    return [
        h("section", { class: "pf-c-page__main-section pf-m-light page-header" },
          h("h1", { class: "pf-c-title pf-m-2xl" }, "Storage pools"),
          button("Create pool", () => ui.createPool(), {
              variant: "primary", id: "create-pool", disabled: !model.admin, title: model.admin ? null : NOT_ADMIN
          })),
        h("section", { class: "pf-c-page__main-section" },
          h("div", { class: "pf-l-stack pf-m-gutter" },
            readOnlyNotice(model),
            pools.length ? pools.map(pool => poolCard(ui, model, pool))
                : h("div", { class: "pf-c-empty-state", id: "no-pools" },
                    h("h2", { class: "pf-c-title pf-m-lg" }, "No storage pools"),
                    h("div", { class: "pf-c-empty-state__body" }, "Create a pool to hand out volumes to guests.")),
            jobsCard(ui, model))),
    ];
}
