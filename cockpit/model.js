/* The daemon's objects as the page sees them. cockpit.dbus follows the
   ObjectManager (InterfacesAdded/Removed) and PropertiesChanged for us:
   nothing here polls. */
export const BUS_NAME = "org.storaged.Storaged1";
export const ROOT = "/org/storaged/Storaged1";
export const MANAGER = ROOT + "/Manager";
export const IFACE = {
    manager: BUS_NAME + ".Manager",
    pool: BUS_NAME + ".Pool",
    volume: BUS_NAME + ".Volume",
    job: BUS_NAME + ".Job",
};

export class Model {
    constructor(onchange) {
        this.onchange = onchange;
        this.client = cockpit.dbus(BUS_NAME, { bus: "system", superuser: "try" });
        // Interface descriptions from introspection: optional columns and actions
        // (thin, snapshots, ...) appear when the daemon offers them.
        this.meta = {};
        this.poolXML = {}; // pool path -> { key, text, sources }
        this.closed = null;
        this.client.addEventListener("meta", (event, meta) => {
            Object.assign(this.meta, meta);
            this.changed();
        });
        this.client.addEventListener("close", (event, options) => {
            this.closed = options.problem || "disconnected";
            this.changed();
        });
        this.pools = this.client.proxies(IFACE.pool, ROOT);
        this.volumes = this.client.proxies(IFACE.volume, ROOT);
        this.jobs = this.client.proxies(IFACE.job, ROOT);
        for (const proxies of [this.pools, this.volumes, this.jobs]) {
            for (const event of ["added", "changed", "removed"])
                proxies.addEventListener(event, () => this.changed());
        }
        this.permission = cockpit.permission({ admin: true });
        this.permission.addEventListener("changed", () => this.changed());
        this.ready = Promise.all([this.pools.wait(), this.volumes.wait(), this.jobs.wait()]);
    }

    // One re-render per frame however many signals arrive at once.
    changed() {
        if (this.scheduled)
            return;
        this.scheduled = true;
        window.requestAnimationFrame(() => {
            this.scheduled = false;
            this.onchange();
        });
    }

    get admin() {
        return this.permission.allowed === true;
    }

    has(iface, member) {
        const info = this.meta[iface];
        return !!info && (member in (info.properties || {}) || member in (info.methods || {}));
    }

    poolList() {
        return Object.values(this.pools).filter(p => p.valid && p.Name !== undefined)
                .sort((a, b) => a.Name.localeCompare(b.Name));
    }

    poolByName(name) {
        return this.poolList().find(p => p.Name === name);
    }

    volumesOf(pool) {
        return Object.values(this.volumes).filter(v => v.valid && v.Pool === pool.path && v.Name !== undefined)
                .sort((a, b) => a.Name.localeCompare(b.Name));
    }

    jobList() {
        return Object.values(this.jobs).filter(j => j.valid && j.Operation !== undefined)
                .sort((a, b) => a.path.localeCompare(b.path, undefined, { numeric: true }));
    }

    volumeName(path) {
        const volume = this.volumes[path];
        return volume && volume.valid ? volume.Name : null;
    }

    call(path, iface, method, args) {
        return this.client.call(path, iface, method, args || []);
    }

    // Where each PV comes from is in the pool's definition, not in its properties:
    // fetched again whenever the PV list changes.
    sources(pool) {
        const key = (pool.PhysicalVolumes || []).join(" ") + "|" + pool.State;
        const cached = this.poolXML[pool.path];
        if (!cached || cached.key !== key) {
            const entry = { key, text: cached ? cached.text : "", sources: cached ? cached.sources : [] };
            this.poolXML[pool.path] = entry;
            this.call(pool.path, IFACE.pool, "GetXML").then(([text]) => {
                entry.text = text;
                entry.sources = parseSources(text);
                this.changed();
            }, () => {});
        }
        return this.poolXML[pool.path].sources;
    }
}

// [{kind: "file", what: "/var/lib/.../x.img (64 MiB)"}, ...] from a pool's XML.
export function parseSources(xmlText) {
    const doc = new DOMParser().parseFromString(xmlText, "application/xml");
    const text = (el, name) => {
        const child = el.getElementsByTagName(name)[0];
        return child ? child.textContent.trim() : "";
    };
    return Array.from(doc.getElementsByTagName("physical_volume")).map(pv => {
        const kind = pv.getAttribute("type");
        if (kind === "file")
            return { kind, what: text(pv, "file") };
        if (kind === "device")
            return { kind, what: text(pv, "device") };
        if (kind === "iscsi") {
            const lun = text(pv, "lun");
            return { kind, what: text(pv, "host") + " " + text(pv, "target") + (lun ? " LUN " + lun : "") };
        }
        if (kind === "nfs")
            return { kind, what: text(pv, "server") + ":" + text(pv, "export") + "/" + text(pv, "file") };
        return { kind: kind || "?", what: "" };
    });
}
