#!/usr/bin/env python
"""Print hostname=state of every container the token sees, sorted, on one line."""

import json
import os
import urllib.request

request = urllib.request.Request(os.environ["HZEL_API_URL"] + "/api/v1/containers")
request.add_header("Authorization", "Bearer " + os.environ["HZEL_API_TOKEN"])
with urllib.request.urlopen(request) as response:
    containers = json.load(response)["data"]
print(" ".join(sorted("%s=%s" % (c["hostname"], c["state"]) for c in containers)))
