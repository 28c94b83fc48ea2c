/* Small helpers: building elements without innerHTML (names come from the
   bus and from users), and sizes in the units Cockpit shows. */

// h("div", {class: "x", onclick: f}, child, ...): children may be strings, nodes, arrays or null.
export function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
        if (value === undefined || value === null || value === false)
            continue;
        if (key.startsWith("on"))
            el.addEventListener(key.slice(2), value);
        else if (key === "width")
            el.style.width = value; // CSSOM is allowed where a style attribute is not (CSP)
        else
            el.setAttribute(key, value === true ? "" : value);
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const child of children) {
        if (child === null || child === undefined || child === false)
            continue;
        if (Array.isArray(child))
            append(el, child);
        else
            el.append(child instanceof Node ? child : String(child));
    }
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function formatBytes(bytes) {
    let value = Number(bytes);
    let unit = 0;
    while (value >= 1024 && unit < UNITS.length - 1) {
        value /= 1024;
        unit++;
    }
    const digits = unit === 0 || value >= 100 || Number.isInteger(value) ? 0 : 1;
    return value.toFixed(digits) + " " + UNITS[unit];
}

export const SIZE_UNITS = ["MiB", "GiB", "TiB"];

// A whole number of bytes from "1.5" and "GiB"; null when it is not a positive size.
export function parseSize(text, unit) {
    const value = Number(String(text).trim());
    const factor = 1024 ** UNITS.indexOf(unit);
    if (!String(text).trim() || !Number.isFinite(value) || value <= 0 || factor < 1)
        return null;
    return Math.round(value * factor);
}

export function percent(part, whole) {
    return whole > 0 ? Math.min(100, Math.round(100 * part / whole)) : 0;
}

// A PatternFly progress bar; the width is set through CSSOM, never a style attribute.
export function progressBar(id, fraction, description, measure, variant) {
    const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    return h("div", { class: "pf-c-progress pf-m-sm" + (variant ? " pf-m-" + variant : ""), id },
             h("div", { class: "pf-c-progress__description" }, description),
             h("div", { class: "pf-c-progress__status", "aria-hidden": "true" },
               h("span", { class: "pf-c-progress__measure" }, measure)),
             h("div", {
                 class: "pf-c-progress__bar", role: "progressbar", "aria-valuemin": "0",
                 "aria-valuemax": "100", "aria-valuenow": String(pct), "aria-label": description
             }, h("div", { class: "pf-c-progress__indicator", width: pct + "%" })));
}

export function button(label, onclick, { variant = "secondary", disabled = false, id, title } = {}) {
    return h("button", {
        class: "pf-c-button pf-m-" + variant, type: "button", id, title,
        disabled: disabled || undefined, "aria-disabled": disabled ? "true" : undefined, onclick
    }, label);
}

export function label(text, color) {
    return h("span", { class: "pf-c-label pf-m-" + color },
             h("span", { class: "pf-c-label__content" }, text));
}

export function alert(message, { variant = "danger", title, id } = {}) {
    return h("div", { class: "pf-c-alert pf-m-inline pf-m-" + variant, id, role: "alert" },
             h("p", { class: "pf-c-alert__title" }, title || message),
             title ? h("div", { class: "pf-c-alert__description" }, message) : null);
}

// "AlreadyExists: <the daemon's message>"; the message alone where the kind says nothing more.
export function errorText(error) {
    const kind = String(error.name || "").split(".").pop();
    const message = error.message || String(error);
    return kind && !["Error", "Failed"].includes(kind) ? kind + ": " + message : message;
}
