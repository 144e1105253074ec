# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the benchmarks share: one JSON call to the emulator (its API or its control plane)."""

import json
import urllib.request


def call(url, method="GET", body=None, token=None):
    """The decoded JSON reply of one request, or None for an empty reply."""
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request) as response:
        text = response.read()
    return json.loads(text) if text else None
