/* One pool opened: its card, its volumes (with the thin/origin columns and
   the snapshot/clone/rename actions when the daemon's introspection offers
   them), and the dialogs that act on volumes. */
import { h, button, formatBytes, parseSize } from "./dom.js";
import { IFACE } from "./model.js";
import { confirmDialog, formGroup, openDialog, sizeInput, textInput, value } from "./dialogs.js";
import { jobsCard, poolCard, readOnlyNotice } from "./pools.js";

const NOT_ADMIN = "Needs administrative access";

function sizeArg(id) {
    const bytes = parseSize(value(id), value(id + "-unit"));
    if (bytes === null)
        throw new Error("The size must be a positive number");
    return bytes;
}

function allocateDialog(model, pool) {
    openDialog({
        id: "dialog-allocate", title: "Allocate volume in " + pool.Name, primary: "Allocate",
        fields: [
            formGroup("Name", textInput("allocate-name", "", "disk1")),
            formGroup("Size", sizeInput("allocate-size", "1", "GiB"),
                      formatBytes(pool.Available || 0) + " free; rounded up to whole extents"),
        ],
        submit: () => model.call(pool.path, IFACE.pool, "AllocateVolume",
                                 [value("allocate-name"), sizeArg("allocate-size"), {}]),
    });
}

function resizeDialog(model, volume) {
    const gib = volume.Capacity % (1024 ** 3) === 0;
    const shown = gib ? volume.Capacity / 1024 ** 3 : volume.Capacity / 1024 ** 2;
    openDialog({
        id: "dialog-resize", title: "Resize " + volume.Name, primary: "Resize",
        fields: [
            formGroup("New size", sizeInput("resize-size", String(shown), gib ? "GiB" : "MiB"),
                      "Now " + formatBytes(volume.Capacity) + ". Shrinking destroys data at the end."),
            formGroup("", h("label", { class: "pf-c-check" },
                            h("input", { class: "pf-c-check__input", type: "checkbox", id: "resize-force" }),
                            h("span", { class: "pf-c-check__label" }, "Allow shrinking"))),
        ],
        submit: () => model.call(volume.path, IFACE.volume, "Resize", [
            sizeArg("resize-size"),
            { force: cockpit.variant("b", document.getElementById("resize-force").checked) }]),
    });
}

// Snapshot, Clone, Rename: a name in, where the daemon has the method.
function nameDialog(model, volume, method) {
    const id = "dialog-" + method.toLowerCase();
    openDialog({
        id, title: `${method} ${volume.Name}`, primary: method,
        fields: formGroup(method === "Rename" ? "New name" : "Name", textInput(id + "-name", "", volume.Name + "-" +
                                                                          method.toLowerCase())),
        submit: () => model.call(volume.path, IFACE.volume, method,
                                 method === "Rename" ? [value(id + "-name")] : [value(id + "-name"), {}]),
    });
}

function volumeRow(ui, model, pool, volume, columns) {
    const disabled = !model.admin;
    const title = disabled ? NOT_ADMIN : undefined;
    const key = "volumes:" + pool.Name;
    const optional = [];
    if (columns.thin)
        optional.push(h("td", { "data-label": "Thin" }, volume.Thin ? "thin" : "thick"));
    if (columns.lock)
        optional.push(h("td", { "data-label": "Lock" }, volume.Lock));
    if (columns.origin) {
        const origin = volume.Origin && volume.Origin !== "/" ? model.volumeName(volume.Origin) || "?" : "";
        optional.push(h("td", { "data-label": "Origin" }, origin));
    }
    const extra = ["Snapshot", "Clone", "Rename"].filter(m => model.has(IFACE.volume, m))
            .map(m => button(m, () => nameDialog(model, volume, m), { variant: "link", disabled, title }));
    return h("tr", { id: "volume-" + volume.Name },
             h("td", { "data-label": "Name", class: "volume-name" }, volume.Name),
             h("td", { "data-label": "Size" }, formatBytes(volume.Capacity)),
             h("td", { "data-label": "Path", class: "volume-path" }, volume.Path),
             h("td", { "data-label": "Active" }, volume.Active ? "yes" : "no"),
             optional,
             h("td", { class: "pf-c-table__action" }, h("div", { class: "volume-actions" },
               extra,
               button("Resize", () => resizeDialog(model, volume), { disabled, title, id: "resize-" + volume.Name }),
               button("Wipe", () => ui.act(key, model.call(volume.path, IFACE.volume, "Wipe")),
                      { variant: "link", disabled, title, id: "wipe-" + volume.Name }),
               button("Delete", () => confirmDialog({
                   id: "dialog-delete-volume", title: `Delete volume ${volume.Name}?`, primary: "Delete",
                   message: `The volume ${volume.Name} in pool ${pool.Name} and all its data are destroyed.`,
                   submit: () => model.call(volume.path, IFACE.volume, "Delete"),
               }), { variant: "secondary pf-m-danger", disabled, title, id: "delete-" + volume.Name }))));
}

function volumesCard(ui, model, pool) {
    const volumes = model.volumesOf(pool);
    const columns = { thin: model.has(IFACE.volume, "Thin"), origin: model.has(IFACE.volume, "Origin"),
                      lock: Boolean(pool.Shared) && model.has(IFACE.volume, "Lock") };
    const headings = ["Name", "Size", "Path", "Active"];
    if (columns.thin)
        headings.push("Thin");
    if (columns.lock)
        headings.push("Lock");
    if (columns.origin)
        headings.push("Origin");
    const canAllocate = model.admin && pool.State === "running";
    return h("article", { class: "pf-c-card", id: "volumes" },
             h("div", { class: "pf-c-card__header" },
               h("div", { class: "pf-c-card__actions" },
                 button("Allocate volume", () => allocateDialog(model, pool), {
                     variant: "primary", id: "allocate", disabled: !canAllocate,
                     title: model.admin ? (canAllocate ? null : "The pool is not running") : NOT_ADMIN
                 })),
               h("div", { class: "pf-c-card__title" }, h("h2", { class: "pf-c-title pf-m-lg" }, "Volumes"))),
             h("div", { class: "pf-c-card__body" },
               ui.errorFor("volumes:" + pool.Name),
               volumes.length
                   ? h("table", { class: "pf-c-table pf-m-compact pf-m-grid-md", role: "grid", id: "volume-table" },
                       h("thead", {}, h("tr", {}, headings.map(t => h("th", { scope: "col" }, t)),
                                      h("th", { scope: "col" }, h("span", { class: "pf-u-screen-reader" }, "Actions")))),
                       h("tbody", {}, volumes.map(v => volumeRow(ui, model, pool, v, columns))))
                   : h("p", { class: "muted", id: "no-volumes" }, "No volumes in this pool.")));
}

export function poolPage(ui, model, name) {
    const pool = model.poolByName(name);
    const breadcrumb = h("section", { class: "pf-c-page__main-breadcrumb" },
                         h("nav", { class: "pf-c-breadcrumb", "aria-label": "breadcrumb" },
                           h("ol", { class: "pf-c-breadcrumb__list" },
                             h("li", { class: "pf-c-breadcrumb__item" },
                               h("a", { class: "pf-c-breadcrumb__link", href: "#/", id: "back" }, "Storage pools")),
                             h("li", { class: "pf-c-breadcrumb__item" },
                               h("span", { class: "pf-c-breadcrumb__item-divider" }, "›"),
                               h("span", { class: "pf-c-breadcrumb__link pf-m-current", "aria-current": "page" }, name)))));
    if (!pool) {
        return [breadcrumb, h("section", { class: "pf-c-page__main-section" },
                              h("p", { id: "no-such-pool" }, `There is no pool named ${name} (any more).`))];
    }
    return [breadcrumb,
        h("section", { class: "pf-c-page__main-section" },
          h("div", { class: "pf-l-stack pf-m-gutter" },
            readOnlyNotice(model),
            poolCard(ui, model, pool, { link: false }),
            volumesCard(ui, model, pool),
            jobsCard(ui, model)))];
}
