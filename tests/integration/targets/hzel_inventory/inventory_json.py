#!/usr/bin/env python
"""Run ansible-inventory with the given arguments and print its JSON with plain strings.

ansible-inventory marks values that came from outside (the hzel API) as
{"__ansible_unsafe": "..."}; the checks compare the values themselves.
"""

import json
import subprocess
import sys


def unwrap(value):
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def main():
    completed = subprocess.run(["ansible-inventory"] + sys.argv[1:], capture_output=True, text=True, check=False)
    sys.stderr.write(completed.stderr)
    if completed.returncode != 0:
        return completed.returncode
    print(json.dumps(unwrap(json.loads(completed.stdout))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
