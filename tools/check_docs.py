"""Check that the README's examples are the files the tests run.

A fenced block (or, in the docsite guides, a code block) whose first line is
``# examples/NAME`` (or another path in the repository) must be a contiguous
excerpt of that file, so that what the README and the guides show is what the
integration tests and the demo run.
"""

import os
import re
import sys

from run_examples import rst_blocks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK = re.compile(r"^```[a-z]*\n# (\S+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOCUMENTS = ("README.md", "roles/hzel_fleet/README.md", "docs/awx.md")
GUIDES = os.path.join("docs", "docsite", "rst")


def marked_blocks(path):
    """The (path, body) of each code block of a guide whose first line is ``# PATH``, unindented as a reader
    copies it (the guide's code blocks as the examples stage reads them)."""
    for _language, body in rst_blocks(path):
        lines = body.splitlines()
        marker = re.match(r"# (\S+)$", lines[0]) if lines and lines[0].strip() else None
        if marker:
            yield marker.group(1), "\n".join(lines[1:]).rstrip("\n") + "\n"


def check_support_matrix(problems):
    """The lowest core the suite runs on (tools/common.sh) is meta/runtime.yml's floor, with no upper bound (a
    new ansible-core must install the collection on the day it ships), and the README's table lists the cores."""
    with open(os.path.join(ROOT, "tools", "common.sh"), encoding="utf-8") as handle:
        cores = re.search(r"^CORES=\(([^)]*)\)", handle.read(), re.MULTILINE).group(1).split()
    minors = [tuple(int(part) for part in core.split("/")[0].split(".")[:2]) for core in cores]
    with open(os.path.join(ROOT, "meta", "runtime.yml"), encoding="utf-8") as handle:
        claimed = re.search(r'^requires_ansible: "([^"]*)"', handle.read(), re.MULTILINE).group(1)
    expected = ">=%d.%d.0" % minors[0]
    if claimed != expected:
        problems.append("meta/runtime.yml claims %s; the suite's lowest core asks for %s" % (claimed, expected))
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        rows = re.findall(r"^\| (\d+\.\d+) \| (\d+\.\d+) \|", handle.read(), re.MULTILINE)
    readme = [(tuple(int(p) for p in core.split(".")), python) for core, python in rows]
    suite = [(minor, core.split("/")[1]) for minor, core in zip(minors, cores)]
    if readme != suite:
        problems.append("README.md's support matrix %s differs from the suite's cores %s" % (readme, suite))
    return len(cores)


def main():
    checked, problems = 0, []
    cores = check_support_matrix(problems)
    guides = sorted(
        os.path.join(GUIDES, name) for name in os.listdir(os.path.join(ROOT, GUIDES)) if name.endswith(".rst")
    )
    for document in DOCUMENTS + tuple(guides):
        with open(os.path.join(ROOT, document), encoding="utf-8") as handle:
            text = handle.read()
        blocks = marked_blocks(document) if document.endswith(".rst") else BLOCK.findall(text)
        for path, body in blocks:
            source = os.path.join(ROOT, path)
            if not os.path.isfile(source):
                continue
            with open(source, encoding="utf-8") as handle:
                if body not in handle.read():
                    problems.append("%s: the block marked %s is not an excerpt of that file" % (document, path))
            checked += 1
    for problem in problems:
        print(problem)
    print(
        "docs: %d example blocks checked against their files, and %d cores against meta/runtime.yml and the "
        "README; %d problems" % (checked, cores, len(problems))
    )
    return 1 if problems or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
