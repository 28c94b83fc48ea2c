/* The "Create pool" dialog: a pool on a sparse file, a block device, an
   iSCSI LUN or a file on NFS; the XML it sends is shown as it is typed. */
import { h, parseSize } from "./dom.js";
import { IFACE, MANAGER } from "./model.js";
import { formGroup, openDialog, select, sizeInput, textInput, value } from "./dialogs.js";

const KINDS = [["file", "Sparse file"], ["device", "Block device"], ["iscsi", "iSCSI LUN"], ["nfs", "File on NFS"]];

function escapeXML(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/'/g, "&apos;")
            .replace(/"/g, "&quot;");
}

// Bytes as the daemon's XML takes them: "64M", "10G".
function xmlSize(id) {
    const bytes = parseSize(value(id), value(id + "-unit"));
    if (bytes === null)
        return "";
    const mib = bytes / 1024 ** 2;
    return Number.isInteger(mib) ? mib + "M" : String(bytes);
}

export function poolXML() {
    const name = value("create-name");
    const kind = value("create-kind");
    const e = escapeXML;
    let pv;
    if (kind === "file") {
        pv = `<file size='${xmlSize("create-file-size")}'>${e(value("create-file"))}</file>`;
    } else if (kind === "device") {
        pv = `<device>${e(value("create-device"))}</device>`;
    } else if (kind === "iscsi") {
        const port = value("create-iscsi-port");
        const lun = value("create-iscsi-lun");
        pv = `<host${port ? ` port='${e(port)}'` : ""}>${e(value("create-iscsi-host"))}</host>` +
             `<target>${e(value("create-iscsi-target"))}</target>${lun ? `<lun>${e(lun)}</lun>` : ""}`;
    } else {
        pv = `<server>${e(value("create-nfs-server"))}</server><export>${e(value("create-nfs-export"))}</export>` +
             `<file size='${xmlSize("create-nfs-size")}'>${e(value("create-nfs-file"))}</file>`;
    }
    return `<pool type='lvm'>\n  <name>${e(name)}</name>\n` +
           `  <physical_volume type='${kind}'>${pv}</physical_volume>\n</pool>\n`;
}

// Block devices a PV may go on: no file system or other signature, not mounted.
function loadDevices(selectElement) {
    cockpit.spawn(["lsblk", "--json", "--bytes", "--paths", "--output", "NAME,SIZE,TYPE,FSTYPE,MOUNTPOINT"],
                  { err: "message" })
            .then(output => {
                const flat = [];
                const walk = list => (list || []).forEach(d => { flat.push(d); walk(d.children) });
                walk(JSON.parse(output).blockdevices);
                const free = flat.filter(d => !d.fstype && !d.mountpoint && !d.children &&
                                         ["disk", "part"].includes(d.type) && d.size > 0);
                selectElement.replaceChildren(...(free.length
                    ? free.map(d => h("option", { value: d.name }, `${d.name} (${(d.size / 1024 ** 3).toFixed(1)} GiB)`))
                    : [h("option", { value: "" }, "No unused block device")]));
            })
            .catch(() => selectElement.replaceChildren(h("option", { value: "" }, "Could not list block devices")));
}

export function createPoolDialog(model) {
    const kindSelect = select("create-kind", KINDS, "file");
    const deviceSelect = select("create-device", [["", "Looking for block devices…"]], "");
    const preview = h("pre", { class: "pf-c-code-block__pre xml-preview", id: "create-xml" });
    const sections = {
        file: [formGroup("File", textInput("create-file", "", "/var/lib/storaged/images/pool.img"),
                         "A new sparse file; never an existing one"),
               formGroup("Size", sizeInput("create-file-size", "10", "GiB"))],
        device: [formGroup("Device", deviceSelect, "Unused: no file system, not mounted")],
        iscsi: [formGroup("Host", textInput("create-iscsi-host", "", "192.0.2.10")),
                formGroup("Port", textInput("create-iscsi-port", "", "3260")),
                formGroup("Target", textInput("create-iscsi-target", "", "iqn.2024-01.org.example:storage")),
                formGroup("LUN", textInput("create-iscsi-lun", "", "1"))],
        nfs: [formGroup("Server", textInput("create-nfs-server", "", "nfs.example.org")),
              formGroup("Export", textInput("create-nfs-export", "", "/srv/pools")),
              formGroup("File", textInput("create-nfs-file", "", "pool.img")),
              formGroup("Size", sizeInput("create-nfs-size", "10", "GiB"))],
    };
    const blocks = Object.fromEntries(Object.entries(sections).map(([kind, groups]) =>
        [kind, h("div", { class: "kind-fields", id: "create-fields-" + kind }, groups)]));
    const update = () => {
        for (const [kind, block] of Object.entries(blocks))
            block.hidden = kind !== value("create-kind");
        preview.textContent = poolXML();
    };
    const nameInput = textInput("create-name", "", "pool1");
    openDialog({
        id: "dialog-create-pool", title: "Create storage pool", primary: "Create",
        fields: [
            formGroup("Name", nameInput),
            formGroup("Storage", kindSelect),
            Object.values(blocks),
            h("details", { class: "xml-details", id: "create-xml-details" },
              h("summary", {}, "Pool XML"),
              h("div", { class: "pf-c-code-block" }, h("div", { class: "pf-c-code-block__content" }, preview))),
        ],
        onchange: update,
        submit: () => model.call(MANAGER, IFACE.manager, "CreatePool", [poolXML()]),
    });
    // The file name follows the pool name until the user types one.
    nameInput.addEventListener("input", () => {
        const file = document.getElementById("create-file");
        if (!file.dataset.edited)
            file.value = nameInput.value ? `/var/lib/storaged/images/${nameInput.value}.img` : "";
        update();
    });
    document.getElementById("create-file").addEventListener("input", event => { event.target.dataset.edited = "1" });
    kindSelect.addEventListener("change", update);
    loadDevices(deviceSelect);
    update();
}
