# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the emulator: python -m hzel_emulator --port 8080 --db /tmp/hzel.sqlite3 (installed: hzel-emulator ...)"""

import argparse
import asyncio
import errno
import json
import logging
import os
import re
import shlex
import signal
import socket

import uvicorn

from .app import create_app
from .faults import Budget, parse_budget
from .store import DEFAULT_USERS, open_store


class _QuietDrops(logging.Filter):
    """Injected connection drops are intended; keep their tracebacks out of the log."""

    def filter(self, record):
        return "ConnectionDropped" not in repr(record.exc_info)


def parse_args(argv=None, prog="hzel_emulator"):
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
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
    parser.add_argument(
        "--ssh-port",
        type=_port,
        help="start the SSH gateway to the containers on 127.0.0.1 at this port (0: a free one); off unless given",
    )
    parser.add_argument(
        "--ssh-dir", help="the gateway's keys, known_hosts, gateway.json and homes (default: beside --db, NAME-ssh/)"
    )
    parser.add_argument(
        "--boot-seconds",
        type=_seconds,
        default=1.0,
        help="after a start or restart, how long the gateway refuses the container (its boot)",
    )
    parser.add_argument(
        "--budget",
        type=_budget,
        help="a request budget per token, REQUESTS/WINDOW (such as 100/10s, 60/1m, 5000/1h): replies carry "
        "RateLimit-Limit, -Remaining and -Reset (seconds), and a spent budget answers 429 with Retry-After",
    )
    parser.add_argument(
        "--budget-x-headers",
        action="store_true",
        help="with --budget, also the X-RateLimit-* headers GitHub sends (X-RateLimit-Reset in UNIX time)",
    )
    parser.add_argument(
        "--budget-quiet",
        action="store_true",
        help="with --budget, no budget headers: a spent budget shows only as 429 with Retry-After, as APIs that do "
        "not tell their budget answer",
    )
    args = parser.parse_args(argv)
    if (args.budget_x_headers or args.budget_quiet) and args.budget is None:
        parser.error("--budget-x-headers and --budget-quiet need --budget")
    if args.budget_x_headers and args.budget_quiet:
        parser.error("--budget-x-headers and --budget-quiet exclude each other")
    return args


def _budget(text):
    try:
        return parse_budget(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text):
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 0 to 65535")
    return value


def _seconds(text):
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def demo_token(users):
    """The token the printed exports name: the first regular user's (alice's hzel-demo-token by default)."""
    for admin in (False, True):
        for user in users:
            if bool(user.get("admin")) == admin and user.get("tokens"):
                return user["tokens"][0]
    return None


def shell_word(text):
    """text as one shell word a user can paste: as it is, in double quotes where they suffice, else in single quotes."""
    if shlex.quote(text) == text:
        return text
    if not re.search(r'[$`\\"!]', text):
        return '"%s"' % text
    return shlex.quote(text)


def exports(url, token, gateway=None):
    """The export lines that point the collection (and Ansible, through the gateway) at the emulator."""
    variables = [("HZEL_API_URL", url)]
    if token is not None:
        variables.append(("HZEL_API_TOKEN", token))
    lines = [variables]
    if gateway is not None:
        env = gateway.ansible_env()
        lines.append([(name, env[name]) for name in ("ANSIBLE_REMOTE_PORT", "ANSIBLE_PRIVATE_KEY_FILE")])
        lines.append([("ANSIBLE_SSH_COMMON_ARGS", env["ANSIBLE_SSH_COMMON_ARGS"])])
    return ["export " + " ".join("%s=%s" % (name, shell_word(value)) for name, value in line) for line in lines]


def announce(args, users, url, gateway=None):
    lines = ["hzel API emulator on %s (state in %s); Ctrl-C stops it" % (url, args.db), "tokens:"]
    for user in users:
        for token in user.get("tokens", []):
            lines.append("  %-16s %s%s" % (token, user["name"], " (admin)" if user.get("admin") else ""))
    if gateway is not None:
        info = gateway.describe()
        lines += [
            "SSH gateway on %s:%d (keys, known_hosts and homes in %s); the user name picks the container:"
            % (info["host"], info["port"], gateway.directory),
            "  " + info["ssh_command"].replace("HOSTNAME", "web-1"),
            "  or: ssh -F %s web-1@hzel" % info["ssh_config"],
            "that key reaches every container; each user's own key only theirs: %s"
            % os.path.join(gateway.directory, "users", "NAME", "id_ed25519"),
            "host variables for Ansible's ssh connection (also in %s):" % gateway.path("gateway.json"),
        ]
        lines += ["  %s: %s" % (name, json.dumps(value)) for name, value in info["ansible_vars"].items()]
        lines.append("commands run as this machine's user, in the container's home directory: reachable, not isolated")
    lines.append("point the collection%s at it (paste into a shell):" % (" and Ansible" if gateway else ""))
    lines += ["  " + line for line in exports(url, demo_token(users), gateway)]
    print("\n".join(lines), flush=True)


class _Server(uvicorn.Server):
    """uvicorn, and the SSH gateway on the same event loop: both start and stop together."""

    def __init__(self, config, gateway):
        super().__init__(config)
        self.gateway = gateway

    async def shutdown(self, sockets=None):
        # Before uvicorn re-raises the signal that stopped it, the gateway's commands end.
        if self.gateway is not None:
            await self.gateway.close()
        await super().shutdown(sockets=sockets)


def _wake_on_signals(loop):
    """A signal that lands on a helper thread (a child watcher's, an executor's) wakes the loop at once.

    Without a wake-up descriptor the main thread would run uvicorn's handler only when the loop
    next wakes for something else.
    """
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    loop.add_reader(reader.fileno(), reader.recv, 4096)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    return reader, writer


PORTS_HINT = (
    "another emulator (make serve) may be running: choose other ports with make serve PORT=9000 SSH_PORT=2223, "
    "or the flags --port and --ssh-port; 0 picks a free port, which the emulator prints"
)


def _listen(host, port):
    """The API's socket, bound before anything starts, so that a taken port is told plainly (and 0 is a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = "[%s]:%d" % (host, port) if family == socket.AF_INET6 else "%s:%d" % (host, port)
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit("hzel_emulator: the API's port %s is taken; %s" % (where, PORTS_HINT)) from None
        raise SystemExit("hzel_emulator: the API cannot listen on %s: %s" % (where, exc)) from None
    # Listening from here on: a client that reads the announced URL is queued until the API takes it.
    sock.listen(2048)
    return sock


async def _serve(server, args, users):
    gateway = server.gateway
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    url = "http://%s:%d" % ("[%s]" % host if ":" in host else host, port)
    wakers = _wake_on_signals(asyncio.get_running_loop())
    if gateway is not None:
        try:
            await gateway.start()
        except gateway.Error as exc:
            sock.close()
            raise SystemExit("hzel_emulator: %s%s" % (exc, "; " + PORTS_HINT if exc.port_taken else "")) from None
    if args.announce:
        announce(args, users, url, gateway)
    try:
        await server.serve(sockets=[sock])
    finally:
        if gateway is not None:
            await gateway.close()
        signal.set_wakeup_fd(-1)
        asyncio.get_running_loop().remove_reader(wakers[0].fileno())
        for each in wakers:
            each.close()


def main(argv=None, prog="hzel_emulator"):
    args = parse_args(argv, prog)
    store = open_store(args.db, args.provision_seconds)
    users = DEFAULT_USERS
    if args.users:
        with open(args.users, encoding="utf-8") as handle:
            users = json.load(handle)["users"]
    store.seed_users(users)
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    gateway = None
    if args.ssh_port is not None:
        # Imported only for the gateway: the HTTP API alone needs no SSH library.
        from .gateway import Gateway, default_directory, quiet_logging

        quiet_logging(args.log_level)
        gateway = Gateway(store, args.ssh_dir or default_directory(args.db), args.ssh_port, args.boot_seconds)
    # A bounded graceful shutdown: an abandoned slow request never keeps a stopped emulator alive.
    config = uvicorn.Config(
        create_app(
            store,
            Budget(*args.budget, x_headers=args.budget_x_headers, quiet=args.budget_quiet) if args.budget else None,
        ),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    try:
        asyncio.run(_serve(_Server(config, gateway), args, users))
    except KeyboardInterrupt:
        pass


def console():
    """The hzel-emulator command of an installed emulator (pip install ./tests/emulator)."""
    main(prog="hzel-emulator")


if __name__ == "__main__":
    main()
