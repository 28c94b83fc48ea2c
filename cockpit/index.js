/* storaged's Cockpit page: routing, re-rendering on every change the model
   reports, and errors kept where the action was taken. */
import { h, alert, errorText } from "./dom.js";
import { Model } from "./model.js";
import { poolListPage } from "./pools.js";
import { poolPage } from "./volumes.js";
import { createPoolDialog } from "./create.js";

const app = document.getElementById("app");
const errors = {}; // where an action was taken -> the daemon's message

const ui = {
    act(key, promise) {
        delete errors[key];
        render();
        promise.catch(error => {
            errors[key] = errorText(error);
            render();
        });
    },
    errorFor(key) {
        if (!errors[key])
            return null;
        return h("div", { class: "action-error" },
                 alert(errors[key], { title: "Failed", id: "error-" + key.replace(/[^A-Za-z0-9_-]/g, "-") }));
    },
    createPool() {
        createPoolDialog(model);
    },
};

// "#/pool/NAME" opens a pool; anything else is the list.
function route() {
    const match = window.location.hash.match(/^#\/pool\/(.+)$/);
    return match ? decodeURIComponent(match[1]) : null;
}

function render() {
    let content;
    if (model.closed) {
        content = h("section", { class: "pf-c-page__main-section" },
                    alert(`storaged is not reachable on the system bus (${cockpit.message(model.closed)}).`,
                          { title: "Not connected", id: "disconnected" }));
    } else if (!model.loaded) {
        content = h("section", { class: "pf-c-page__main-section" }, h("p", { id: "loading" }, "Loading…"));
    } else {
        const pool = route();
        content = pool === null ? poolListPage(ui, model) : poolPage(ui, model, pool);
    }
    const scroll = window.scrollY;
    app.replaceChildren(h("main", { class: "pf-c-page__main", id: "storaged-page" }, content));
    window.scrollTo(0, scroll);
}

const model = new Model(render);
model.ready.then(() => { model.loaded = true; render() },
                 error => { model.closed = error.problem || error.message || "failed"; render() });
window.addEventListener("hashchange", render);
