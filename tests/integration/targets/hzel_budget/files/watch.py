#!/usr/bin/env python
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The event source hzel.cloud.hzel_events for SECONDS, as ansible-rulebook runs it (main() on an event loop).

Usage: watch.py SECONDS ARGS_JSON. The token, the URL and api_rate_limit come from the environment
(HZEL_API_TOKEN, HZEL_API_URL, HZEL_API_RATE_LIMIT), as an activation's would. Prints the events as one JSON list.
"""

import asyncio
import json
import os
import sys

for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
    if path:
        sys.path.insert(0, path)

from ansible_collections.hzel.cloud.extensions.eda.plugins.event_source import hzel_events  # noqa: E402


class Queue:
    def __init__(self):
        self.events = []

    async def put(self, event):
        self.events.append(event)


async def watch(seconds, args):
    queue = Queue()
    try:
        await asyncio.wait_for(hzel_events.main(queue, args), seconds)
    except asyncio.TimeoutError:
        pass
    return queue.events


if __name__ == "__main__":
    print(json.dumps(asyncio.run(watch(float(sys.argv[1]), json.loads(sys.argv[2])))))
