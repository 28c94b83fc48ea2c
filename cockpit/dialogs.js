/* PatternFly modal dialogs: a form, an error shown inside the dialog (which
   stays open so the user can correct it), and the primary action's promise. */
import { h, alert, button, errorText, SIZE_UNITS } from "./dom.js";

const container = () => document.getElementById("dialogs");

// fields: nodes; submit(): a promise; the dialog closes when it resolves.
export function openDialog({ id, title, fields, primary, variant = "primary", submit, onchange }) {
    const errorBox = h("div", { class: "dialog-error", id: id + "-error" });
    const primaryButton = button(primary, null, { variant, id: id + "-primary" });
    const cancelButton = button("Cancel", null, { variant: "link", id: id + "-cancel" });
    const form = h("form", { class: "pf-c-form pf-m-horizontal", novalidate: true }, fields);
    const box = h("div", {
        class: "pf-c-modal-box pf-m-md", role: "dialog", "aria-modal": "true", id,
        "aria-labelledby": id + "-title"
    },
                  h("header", { class: "pf-c-modal-box__header" },
                    h("h1", { class: "pf-c-modal-box__title", id: id + "-title" }, title)),
                  h("div", { class: "pf-c-modal-box__body" }, form, errorBox),
                  h("footer", { class: "pf-c-modal-box__footer" }, primaryButton, cancelButton));
    const backdrop = h("div", { class: "pf-c-backdrop" }, h("div", { class: "pf-l-bullseye" }, box));

    const close = () => backdrop.remove();
    const run = event => {
        event.preventDefault();
        errorBox.replaceChildren();
        primaryButton.disabled = true;
        let promise;
        try {
            promise = Promise.resolve(submit());
        } catch (error) {
            promise = Promise.reject(error);
        }
        promise.then(close, error => {
            primaryButton.disabled = false;
            errorBox.replaceChildren(alert(errorText(error), { title: "Failed", id: id + "-alert" }));
        });
    };
    primaryButton.addEventListener("click", run);
    form.addEventListener("submit", run);
    cancelButton.addEventListener("click", close);
    if (onchange) {
        form.addEventListener("input", onchange);
        form.addEventListener("change", onchange); // a <select> may report only this
    }
    backdrop.addEventListener("keydown", event => { if (event.key === "Escape") close() });
    container().replaceChildren(backdrop);
    const first = form.querySelector("input, select");
    if (first)
        first.focus();
    return { close, form };
}

export function formGroup(labelText, control, helper) {
    return h("div", { class: "pf-c-form__group" },
             h("div", { class: "pf-c-form__group-label" },
               h("label", { class: "pf-c-form__label", for: control.id || undefined },
                 h("span", { class: "pf-c-form__label-text" }, labelText))),
             h("div", { class: "pf-c-form__group-control" }, control,
               helper ? h("p", { class: "pf-c-form__helper-text" }, helper) : null));
}

export function textInput(id, value, placeholder) {
    return h("input", { class: "pf-c-form-control", type: "text", id, value: value || "", placeholder });
}

export function select(id, options, selected) {
    return h("select", { class: "pf-c-form-control", id },
             options.map(([value, text]) => h("option", { value, selected: value === selected }, text)));
}

// A number and a unit side by side; read with readSize().
export function sizeInput(id, value, unit) {
    return h("div", { class: "pf-c-input-group", id: id + "-group" },
             h("input", { class: "pf-c-form-control", type: "text", inputmode: "decimal", id, value }),
             select(id + "-unit", SIZE_UNITS.map(u => [u, u]), unit));
}

export function confirmDialog({ id, title, message, primary, submit }) {
    return openDialog({
        id, title, primary, variant: "danger", submit,
        fields: h("p", { class: "dialog-message", id: id + "-message" }, message),
    });
}

export function value(id) {
    return document.getElementById(id).value.trim();
}
