"""Assemble the Cockpit package: the page's own files and the part of
PatternFly 4 it uses (Cockpit 287's own pages are on PatternFly 4).

    python3 cockpit/build.py PATTERNFLY_DIR OUT_DIR

Only the components the page uses are concatenated, and only the woff2 fonts
that stylesheet refers to are copied: a few hundred KiB instead of 31 MiB.
"""
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE_FILES = ["manifest.json", "index.html", "storaged.css", "index.js", "model.js", "dom.js",
              "dialogs.js", "pools.js", "volumes.js", "create.js"]
COMPONENTS = ["Alert", "Backdrop", "Breadcrumb", "Button", "Card", "Check", "CodeBlock",
              "DescriptionList", "EmptyState", "Form", "FormControl", "InputGroup", "Label",
              "List", "ModalBox", "Page", "Progress", "Switch", "Table", "Title"]
LAYOUTS = ["Bullseye", "Stack"]
URL = re.compile(r"url\(\"?\./(assets/[^\")]+)\"?\)")


def stylesheet(patternfly: str) -> str:
    parts = [os.path.join(patternfly, "patternfly-base.css")]
    for group, names in (("components", COMPONENTS), ("layouts", LAYOUTS)):
        for name in names:
            folder = os.path.join(patternfly, group, name)
            parts += sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".css"))
    parts.append(os.path.join(patternfly, "utilities", "Accessibility", "accessibility.css"))
    chunks = []
    for path in parts:
        with open(path) as f:
            chunks.append(f"/* {os.path.relpath(path, patternfly)} */\n{f.read()}")
    return "\n".join(chunks)


def main(patternfly: str, out: str) -> None:
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    css = stylesheet(patternfly)
    with open(os.path.join(out, "patternfly.css"), "w") as f:
        f.write(css)
    # Browsers take the first format they support: woff2 is enough. Overpass is
    # only used under .pf-m-overpass-font, which the page does not set.
    for asset in sorted(set(URL.findall(css))):
        if asset.endswith(".woff2") and "overpass" not in asset:
            target = os.path.join(out, asset)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(patternfly, asset), target)
    for name in PAGE_FILES:
        shutil.copyfile(os.path.join(HERE, name), os.path.join(out, name))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
