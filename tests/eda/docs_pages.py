# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The docsite pages of the event source, the rulebooks and the playbooks, written from their files.

Usage: docs_pages.py --write   (rewrites docs/docsite/rst/{hzel_events_source,eda_rulebooks,playbooks}.rst)
       docs_pages.py --check   (exits 1 naming each page that differs from what its files give)

The event source's page is its DOCUMENTATION and EXAMPLES; a rulebook's or a playbook's section is the comment
at the head of its file and the file itself. ansible-doc reads neither event sources nor playbooks, so these
pages are where a user finds them.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RST = ROOT / "docs" / "docsite" / "rst"
SOURCE = ROOT / "extensions" / "eda" / "plugins" / "event_source" / "hzel_events.py"
RULEBOOKS = ROOT / "extensions" / "eda" / "rulebooks"
PLAYBOOKS = ROOT / "playbooks"
GENERATED = ".. Written by tests/eda/docs_pages.py --write from the files it shows; edit those, not this page."
# Ansible's documentation markup: C(code), O(option), V(value), E(environment variable), RV(return value),
# I(italic), B(bold), U(url), M(module), P(plugin).
MARKUP = re.compile(r"\b(C|O|V|E|RV|I|B|U|M|P)\(")


def markup_to_rst(text: str) -> str:
    """The text with Ansible's markup turned into reStructuredText (balanced parentheses inside a macro kept)."""
    out = []
    position = 0
    while True:
        found = MARKUP.search(text, position)
        if not found:
            out.append(escape(text[position:]))
            return "".join(out)
        out.append(escape(text[position : found.start()]))
        depth, index = 1, found.end()
        while index < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[index], 0)
            index += 1
        inner = text[found.end() : index - 1]
        kind = found.group(1)
        if kind == "B":
            out.append("**%s**" % inner)
        elif kind == "I":
            out.append("*%s*" % inner)
        else:
            out.append("``%s``" % inner)
        position = index


def escape(text: str) -> str:
    """Plain text that reStructuredText reads as plain text."""
    return re.sub(r"([*`|\\]|_(?=\W|$))", r"\\\1", text)


def title(text: str, underline: str, label: str | None = None) -> list[str]:
    lines = [".. _ansible_collections.hzel.cloud.docsite.%s:" % label, ""] if label else []
    return lines + [text, underline * len(text), ""]


def paragraphs(items) -> list[str]:
    lines: list[str] = []
    for item in [items] if isinstance(items, str) else items:
        lines += [markup_to_rst(" ".join(str(item).split())), ""]
    return lines


def code(text: str, language: str) -> list[str]:
    return [".. code-block:: %s" % language, ""] + [("    " + line).rstrip() for line in text.splitlines()] + [""]


def source_page() -> str:
    module = ast.parse(SOURCE.read_text(encoding="utf-8"))
    strings = {
        node.targets[0].id: node.value.value
        for node in module.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    doc = yaml.safe_load(strings["DOCUMENTATION"])
    lines = [GENERATED, ""] + title("hzel.cloud.hzel_events event source", "=", "hzel_events_source")
    lines += paragraphs(doc["short_description"] + ".")
    lines += [
        "Use it in a rulebook as ``hzel.cloud.hzel_events``; ansible-rulebook (or a decision environment) needs the",
        "collection installed.",
        "",
    ]
    lines += title("Synopsis", "-")
    for item in doc["description"]:
        lines += ["- " + markup_to_rst(" ".join(item.split())), ""]
    lines += title("Arguments", "-")
    for name, option in doc["options"].items():
        facts = ["*%s*" % option.get("type", "str")]
        if option.get("elements"):
            facts[0] = "*%s of %s*" % (option["type"], option["elements"])
        if "default" in option:
            facts.append(
                "default: ``%s``"
                % yaml.safe_dump(option["default"], default_flow_style=True)
                .strip()
                .removesuffix("\n...")
                .removesuffix("...")
            )
        if option.get("choices"):
            facts.append("choices: %s" % ", ".join("``%s``" % choice for choice in option["choices"]))
        lines += ["``%s``" % name, "  " + "; ".join(facts), ""]
        for item in option["description"]:
            lines += ["  " + markup_to_rst(" ".join(item.split())), ""]
    lines += title("Notes", "-")
    for item in doc.get("notes", []):
        lines += ["- " + markup_to_rst(" ".join(item.split())), ""]
    lines += title("Example", "-") + code(strings["EXAMPLES"].strip().removeprefix("---").strip(), "yaml")
    lines += [
        "See :ref:`ansible_collections.hzel.cloud.docsite.event_driven_ansible` for an overview and",
        ":ref:`ansible_collections.hzel.cloud.docsite.eda_rulebooks` for the rulebooks that use it.",
        "",
    ]
    return "\n".join(lines).rstrip() + "\n"


def head_comment(path: Path) -> str:
    """The comment lines at the head of a YAML file, without their '#'."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line == "---":
            continue
        if not line.startswith("#"):
            break
        lines.append(line[1:].strip())
    return "\n".join(lines)


def files_page(label: str, heading: str, intro: list[str], directory: Path, prefix: str, language: str) -> str:
    lines = [GENERATED, ""] + title(heading, "=", label) + intro
    for path in sorted(directory.glob("*.yml")):
        name = "hzel.cloud.%s" % path.stem
        lines += title(name, "-")
        comment = head_comment(path)
        commands = [line for line in comment.splitlines() if line.startswith(prefix)]
        prose = [line for line in comment.splitlines() if not line.startswith(prefix) and not line.startswith("    ")]
        if commands:
            lines += code("\n".join(commands), "console")
        lines += paragraphs(" ".join(prose))
        lines += code(path.read_text(encoding="utf-8").rstrip(), language)
    return "\n".join(lines).rstrip() + "\n"


def rulebooks_page() -> str:
    intro = [
        "The collection's rulebooks run by name with ansible-rulebook (``ansible-rulebook -r hzel.cloud.NAME``), with",
        "the API token and URL from ``HZEL_API_TOKEN`` and ``HZEL_API_URL``. Each reads the",
        ":ref:`hzel.cloud.hzel_events event source <ansible_collections.hzel.cloud.docsite.hzel_events_source>`;",
        "``hzel_events_interval`` and ``hzel_events_hostnames`` set the poll interval and the watched containers.",
        "",
        "A throttle's period can only be written in the rulebook file (ansible-rulebook does not template it): for",
        "another period, copy the rulebook and change its ``once_within`` or ``once_after`` line.",
        "",
    ]
    return files_page("eda_rulebooks", "Rulebooks", intro, RULEBOOKS, "ansible-rulebook ", "yaml")


def playbooks_page() -> str:
    intro = [
        "The collection's playbooks run by name with ansible-playbook (``ansible-playbook hzel.cloud.NAME``), with",
        "the API token and URL from ``HZEL_API_TOKEN`` and ``HZEL_API_URL`` (or the extra variables",
        "``hzel_api_token`` and ``hzel_api_url``).",
        "",
    ]
    return files_page("playbooks", "Playbooks", intro, PLAYBOOKS, "ansible-playbook ", "yaml")


PAGES = {
    "hzel_events_source.rst": source_page,
    "eda_rulebooks.rst": rulebooks_page,
    "playbooks.rst": playbooks_page,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true")
    action.add_argument("--check", action="store_true")
    options = parser.parse_args()
    stale = []
    for name, render in PAGES.items():
        page = RST / name
        text = render()
        if options.write:
            page.write_text(text, encoding="utf-8")
        elif not page.is_file() or page.read_text(encoding="utf-8") != text:
            stale.append(str(page.relative_to(ROOT)))
    for page in stale:
        print("%s is not what its files give: run tests/eda/docs_pages.py --write" % page)
    if options.check and not stale:
        print("docsite pages of the event source, rulebooks and playbooks match their files (%d)" % len(PAGES))
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
