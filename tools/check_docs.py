"""Check that the README's examples are the files the tests run.

A fenced block whose first line is ``# examples/NAME`` (or another path in the
repository) must be a contiguous excerpt of that file, so that what the README
shows is what the integration tests and the demo run.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK = re.compile(r"^```[a-z]*\n# (\S+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
DOCUMENTS = ("README.md", "roles/hzel_fleet/README.md", "docs/awx/README.md")


def main():
    checked, problems = 0, []
    for document in DOCUMENTS:
        with open(os.path.join(ROOT, document), encoding="utf-8") as handle:
            text = handle.read()
        for path, body in BLOCK.findall(text):
            source = os.path.join(ROOT, path)
            if not os.path.isfile(source):
                continue
            with open(source, encoding="utf-8") as handle:
                if body not in handle.read():
                    problems.append("%s: the block marked %s is not an excerpt of that file" % (document, path))
            checked += 1
    for problem in problems:
        print(problem)
    print("docs: %d example blocks checked against their files, %d differ" % (checked, len(problems)))
    return 1 if problems or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
