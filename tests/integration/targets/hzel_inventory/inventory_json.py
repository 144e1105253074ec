#!/usr/bin/env python
"""Run ansible-inventory with the given arguments and print its JSON with plain strings.

ansible-inventory marks values that came from outside (the hzel API) as
{"__ansible_unsafe": "..."}; the checks compare the values themselves. With
--mark-unsafe (not passed on), such a value becomes "UNSAFE:..." instead, so
that a check can tell a marked value from a plain one.
"""

import json
import subprocess
import sys


def unwrap(value, mark=""):
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return mark + value["__ansible_unsafe"]
        return {key: unwrap(item, mark) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item, mark) for item in value]
    return value


def main():
    arguments = [argument for argument in sys.argv[1:] if argument != "--mark-unsafe"]
    mark = "UNSAFE:" if len(arguments) < len(sys.argv) - 1 else ""
    completed = subprocess.run(["ansible-inventory"] + arguments, capture_output=True, text=True, check=False)
    sys.stderr.write(completed.stderr)
    if completed.returncode != 0:
        return completed.returncode
    print(json.dumps(unwrap(json.loads(completed.stdout), mark)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
