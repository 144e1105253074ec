#!/usr/bin/env python
"""control.py METHOD PATH [JSON] [TOKEN]: the emulator's control plane, or its API with GET-API / POST-API."""

import os
import sys
import urllib.request


def main(method, path, body=None, token=None):
    url = os.environ["HZEL_API_URL"]
    headers = {"Content-Type": "application/json"}
    if method.endswith("-API"):
        method = method[:-4]
        url += "/api/v1" + path
        headers["Authorization"] = "Bearer " + (token or os.environ["HZEL_API_TOKEN"])
    else:
        url += "/_emulator" + path
    request = urllib.request.Request(url, data=body.encode() if body else None, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = response.read().decode()
    # Only reads print; the control calls of the script stay quiet.
    if method == "GET":
        sys.stdout.write(reply)


if __name__ == "__main__":
    main(*sys.argv[1:])
