# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the emulator: python -m hzel_emulator --port 8080 --db /tmp/hzel.sqlite3"""

import argparse
import json
import logging

import uvicorn

from .app import create_app
from .store import DEFAULT_USERS, open_store


class _QuietDrops(logging.Filter):
    """Injected connection drops are intended; keep their tracebacks out of the log."""

    def filter(self, record):
        return "ConnectionDropped" not in repr(record.exc_info)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="hzel_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--db", default="hzel-emulator.sqlite3", help="SQLite file holding all state")
    parser.add_argument("--users", help="JSON file of users, tokens and sessions (default: the built-in demo users)")
    parser.add_argument(
        "--provision-seconds", type=float, default=1.0, help="how long a new container stays 'provisioning'"
    )
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--announce", action="store_true", help="print the URL, the tokens and how to point the collection at it"
    )
    return parser.parse_args(argv)


def announce(args, users):
    url = "http://%s:%d" % (args.host, args.port)
    lines = ["hzel API emulator on %s (state in %s); Ctrl-C stops it" % (url, args.db), "tokens:"]
    for user in users:
        for token in user.get("tokens", []):
            lines.append("  %-16s %s%s" % (token, user["name"], " (admin)" if user.get("admin") else ""))
    lines += ["point the collection at it:", "  export HZEL_API_URL=%s HZEL_API_TOKEN=%s" % (url, "hzel-demo-token")]
    print("\n".join(lines), flush=True)


def main(argv=None):
    args = parse_args(argv)
    store = open_store(args.db, args.provision_seconds)
    users = DEFAULT_USERS
    if args.users:
        with open(args.users, encoding="utf-8") as handle:
            users = json.load(handle)["users"]
    store.seed_users(users)
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    if args.announce:
        announce(args, users)
    # A bounded graceful shutdown: an abandoned slow request never keeps a stopped emulator alive.
    uvicorn.run(
        create_app(store),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
