# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An SSH gateway to the emulator's containers: the SSH user name picks the container.

It makes containers reachable the way a user reaches a machine (ssh, sftp, scp, Ansible's ssh
connection), not isolated: commands run as the emulator's own user on this machine, with the
container's home directory as working directory and HOME. It listens on 127.0.0.1 only.
"""

import asyncio
import errno
import fcntl
import json
import logging
import os
import posixpath
import re
import shlex
import signal
import struct
import sys
import termios
import time

import asyncssh

LOOPBACK = "127.0.0.1"
CLIENT_KEY = "id_ed25519"
HOST_KEY = "ssh_host_ed25519_key"
# The PATH of a plain machine: the emulator's own (a virtualenv, say) is not the container's.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CHUNK = 65536
CONTAINER_ID_RE = re.compile(r"^[0-9a-f][0-9a-f-]{0,63}$")
# A user's keys live in users/NAME/ when the name is a plain file name, else in users/USER_ID/.
USER_DIR_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
# Whose containers a key reaches: the gateway's own key and an admin's reach every container.
EVERY_CONTAINER = None
# After the command of a terminal session exits, how long its last output may take to drain.
PTY_DRAIN_SECONDS = 1.0
# How often the process groups left behind by ended sessions are looked at, to forget the ones that are gone.
SWEEP_SECONDS = 1.0
# A session that ends while its command runs hangs up on it (SIGHUP, SIGTERM), and after this grace kills
# what is left of its process group: `nohup` and `trap '' HUP TERM` ignore the first two.
HANGUP_GRACE_SECONDS = 2.0


class GatewayError(Exception):
    """A start-up failure the emulator reports in one line; port_taken when another process holds the port."""

    def __init__(self, message, port_taken=False):
        super().__init__(message)
        self.port_taken = port_taken


def default_directory(db_path):
    """Beside the database: hzel.sqlite3 keeps its keys and homes in hzel-ssh/."""
    return os.path.splitext(os.path.abspath(db_path))[0] + "-ssh"


def _write_file(path, data, mode):
    """Write atomically, created with mode (a private key is never readable by others, even briefly)."""
    temporary = path + ".tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def _key(path, comment):
    """The ed25519 key at path, made on first use and kept, so known_hosts and configs stay valid."""
    if os.path.exists(path):
        os.chmod(path, 0o600)
        try:
            key = asyncssh.read_private_key(path)
        except (asyncssh.KeyImportError, OSError, ValueError) as exc:
            raise GatewayError("cannot read the key %s (%s); remove it to have a new one made" % (path, exc)) from None
    else:
        key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
        _write_file(path, key.export_private_key(), 0o600)
    _write_file(path + ".pub", key.export_public_key(), 0o644)
    return key


def _ssh_option(name, path):
    """NAME=PATH for ssh -o, as a shell word: split as a shell would, then by ssh at blanks outside double quotes."""
    if shlex.quote(path) == path:
        return "%s=%s" % (name, path)
    return shlex.quote('%s="%s"' % (name, path))


def _inside(path, root):
    return path == root or path.startswith(root + b"/")


class HomeSFTPServer(asyncssh.SFTPServer):
    """SFTP (and scp) confined to one directory, addressed by its real paths.

    Clients see the host's absolute paths (the ones `echo ~` prints), not a virtual root: a path is
    taken relative to the home directory, resolved, and refused unless it stays inside. Symbolic
    links are resolved too, so a link that leads out is refused; a link itself (lstat, readlink,
    remove, rename) is reached through its directory.
    """

    def __init__(self, chan, home):
        super().__init__(chan)
        self._home = os.fsencode(home)

    def _local(self, path, follow=True):
        local = posixpath.normpath(posixpath.join(self._home, path))
        if local == self._home:
            return local
        checked = local if follow else posixpath.dirname(local)
        if not _inside(os.path.realpath(checked), self._home):
            raise asyncssh.SFTPPermissionDenied("Permission denied: outside the container's home directory")
        return local

    def exit(self):
        # An exit status, as sftp-server gives one: scp in its SFTP mode fails without it. (Legacy scp
        # reports its own.)
        if self.channel.get_subsystem() == "sftp":
            self.channel.exit(0)

    def map_path(self, path):
        return self._local(path)

    def reverse_map_path(self, path):
        if not _inside(path, self._home):
            raise asyncssh.SFTPNoSuchFile("No such file")
        return path

    async def scandir(self, path):
        local = self._local(path)
        for name in (b".", b".."):
            # The home directory is its own parent here: what lies above it is not shown.
            entry = posixpath.normpath(posixpath.join(local, name))
            entry = entry if _inside(entry, self._home) else local
            yield asyncssh.SFTPName(name, attrs=asyncssh.SFTPAttrs.from_local(os.lstat(entry)))
        with os.scandir(local) as entries:
            for entry in entries:
                attrs = asyncssh.SFTPAttrs.from_local(entry.stat(follow_symlinks=False))
                yield asyncssh.SFTPName(entry.name, attrs=attrs)

    def lstat(self, path):
        return os.lstat(self._local(path, follow=False))

    def readlink(self, path):
        return os.readlink(self._local(path, follow=False))

    def remove(self, path):
        os.remove(self._local(path, follow=False))

    def rename(self, oldpath, newpath):
        old, new = self._local(oldpath, follow=False), self._local(newpath, follow=False)
        if os.path.lexists(new):
            raise asyncssh.SFTPFailure("File already exists")
        os.rename(old, new)

    def posix_rename(self, oldpath, newpath):
        os.replace(self._local(oldpath, follow=False), self._local(newpath, follow=False))

    def symlink(self, oldpath, newpath):
        new = self._local(newpath, follow=False)
        # The link must lead inside the home directory as well, resolved as the kernel will resolve it: a
        # relative target from the link's directory, links on the way followed before a `..` applies
        # (`~web-1/..` is the parent of the home, since `~web-1` leads to the home itself).
        target = posixpath.join(os.path.realpath(posixpath.dirname(new)), oldpath)
        if not _inside(os.path.realpath(target), self._home):
            raise asyncssh.SFTPPermissionDenied(
                "Permission denied: the link leads outside the container's home directory"
            )
        os.symlink(oldpath, new)


class _Connection(asyncssh.SSHServer):
    """One SSH connection: its user name names the container it reaches."""

    def __init__(self, gateway):
        self._gateway = gateway
        self.conn = None
        self.container = None
        self.owner = EVERY_CONTAINER
        self._refusal_told = False

    def connection_made(self, conn):
        self.conn = conn
        self._gateway.connections.add(self)

    def connection_lost(self, exc):
        self._gateway.forget(self)

    def begin_auth(self, username):
        return True

    def public_key_auth_supported(self):
        return True

    def validate_public_key(self, username, key):
        known, owner = self._gateway.key_owner(key)
        if not known:
            return False
        record, refusal = self._gateway.reachable(username, owner=owner)
        if refusal:
            # Told only to the holder of the gateway's key, and once per connection.
            if not self._refusal_told:
                self._refusal_told = True
                self.conn.send_auth_banner("hzel emulator: %s\r\n" % refusal)
            return False
        self.container = record
        self.owner = owner
        return True

    def auth_completed(self):
        self.conn.set_extra_info(hzel_container=self.container)
        self._gateway.register(self)


class Gateway:
    """The SSH server, on the event loop of the HTTP API, reading the same store."""

    Error = GatewayError

    def __init__(self, store, directory, port=0, boot_seconds=1.0):
        self.store = store
        self.directory = os.path.abspath(directory)
        self.requested_port = port
        self.boot_seconds = float(boot_seconds)
        self.port = None
        self.client_key = None
        # Public key data -> the user it belongs to; each user's key reaches that user's containers.
        self._user_keys = {}
        self.user_key_files = {}
        self.connections = set()
        self._by_container = {}
        # Container id -> {process group id: the asyncio process that leads it}: every group a session
        # started, kept after the session ends until nothing in it runs any more.
        self._groups = {}
        self._sweeper = None
        self._booting = {}
        self._acceptor = None
        self._loop = None

    # paths -------------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.directory, name)

    @property
    def homes(self):
        return self.path("homes")

    def home(self, record, login):
        """The container's own directory, by id, so that it survives stop and start.

        Ansible (and a user) writes ~LOGIN for the home of the remote user, which /bin/sh looks up
        in the user database; the container's user is not there, so the shell leaves ~LOGIN as it
        is: a path relative to the working directory, the home. A link ~LOGIN -> . in the home
        makes that path the home itself, for commands and SFTP alike.
        """
        if not CONTAINER_ID_RE.match(record["id"]):
            raise ValueError("unexpected container id %r" % record["id"])
        home = os.path.join(self.homes, record["id"])
        os.makedirs(home, mode=0o700, exist_ok=True)
        link = os.path.join(home, "~" + login)
        if login in (record["id"], record["hostname"]) and not os.path.lexists(link):
            os.symlink(".", link)
        return home

    # life cycle --------------------------------------------------------------
    async def start(self):
        if not os.path.isdir(self.directory):
            os.makedirs(self.directory, mode=0o700)
        # Resolved once, so that HOME, `echo ~` and the paths SFTP reports are one spelling.
        self.directory = os.path.realpath(self.directory)
        for stale in ("gateway.json", "known_hosts"):
            if os.path.exists(self.path(stale)):
                os.remove(self.path(stale))
        os.makedirs(self.homes, mode=0o700, exist_ok=True)
        self.client_key = _key(self.path(CLIENT_KEY), "hzel-emulator-gateway")
        self._make_user_keys()
        host_key = _key(self.path(HOST_KEY), "hzel-emulator-host")
        self._loop = asyncio.get_running_loop()
        _watch_children_without_threads(self._loop)
        try:
            self._acceptor = await asyncssh.create_server(
                lambda: _Connection(self),
                LOOPBACK,
                self.requested_port,
                server_host_keys=[host_key],
                process_factory=self._session,
                sftp_factory=self._sftp,
                allow_scp=True,
                encoding=None,
                line_editor=False,
                agent_forwarding=False,
                x11_forwarding=False,
                keepalive_interval=15,
            )
        except OSError as exc:
            where = "%s:%s" % (LOOPBACK, self.requested_port)
            if exc.errno == errno.EADDRINUSE:
                raise GatewayError("the SSH gateway's port %s is taken" % where, port_taken=True) from None
            raise GatewayError("the SSH gateway cannot listen on %s: %s" % (where, exc)) from None
        self.port = self._acceptor.get_port()
        self.store.power_listeners.append(self._power_changed)
        self._write_client_files(host_key)

    async def close(self):
        if self._acceptor is None:
            return
        if self._power_changed in self.store.power_listeners:
            self.store.power_listeners.remove(self._power_changed)
        self._acceptor.close()
        self._acceptor = None
        for container_id in list(self._groups):
            self._kill(container_id)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self.connections):
            connection.conn.disconnect(asyncssh.DISC_BY_APPLICATION, "the hzel emulator is shutting down")
        if os.path.exists(self.path("gateway.json")):
            os.remove(self.path("gateway.json"))

    def _make_user_keys(self):
        """One key pair per user, made once and kept: users/NAME/id_ed25519 reaches NAME's containers only."""
        os.makedirs(self.path("users"), mode=0o700, exist_ok=True)
        for user in self.store.list_users():
            name = user["name"] if USER_DIR_RE.match(user["name"]) else user["id"]
            directory = self.path(os.path.join("users", name))
            os.makedirs(directory, mode=0o700, exist_ok=True)
            path = os.path.join(directory, CLIENT_KEY)
            key = _key(path, "hzel-emulator-%s" % user["id"])
            self._user_keys[key.public_data] = user
            self.user_key_files[user["name"]] = path

    def key_owner(self, key):
        """(whether the key is one the gateway accepts, whose containers it reaches: a user id or EVERY_CONTAINER)."""
        if key.public_data == self.client_key.public_data:
            return True, EVERY_CONTAINER
        user = self._user_keys.get(key.public_data)
        if user is None:
            return False, EVERY_CONTAINER
        return True, EVERY_CONTAINER if user["admin"] else user["id"]

    def describe(self):
        """What a client needs, as gateway.json holds it."""
        key = self.path(CLIENT_KEY)
        known_hosts = self.path("known_hosts")
        return {
            "host": LOOPBACK,
            "port": self.port,
            "identity_file": key,
            "known_hosts": known_hosts,
            "ssh_config": self.path("ssh_config"),
            "homes": self.homes,
            "boot_seconds": self.boot_seconds,
            "user_keys": dict(self.user_key_files),
            "ssh_command": "ssh -i %s -o IdentitiesOnly=yes -o %s -p %d HOSTNAME@%s"
            % (shlex.quote(key), _ssh_option("UserKnownHostsFile", known_hosts), self.port, LOOPBACK),
            "ansible_vars": self.ansible_vars(),
            "ansible_env": self.ansible_env(),
        }

    def ansible_env(self):
        """Ansible's own settings (environment variables) that reach every container through the gateway."""
        return {
            "ANSIBLE_REMOTE_PORT": str(self.port),
            "ANSIBLE_PRIVATE_KEY_FILE": self.path(CLIENT_KEY),
            "ANSIBLE_SSH_COMMON_ARGS": "-o IdentitiesOnly=yes -o %s"
            % _ssh_option("UserKnownHostsFile", self.path("known_hosts")),
        }

    def ansible_vars(self):
        """The host variables that reach a container through the gateway with Ansible's ssh connection."""
        return {
            "ansible_connection": "ssh",
            "ansible_host": LOOPBACK,
            "ansible_port": self.port,
            "ansible_user": "{{ inventory_hostname }}",
            "ansible_ssh_private_key_file": self.path(CLIENT_KEY),
            "ansible_ssh_common_args": "-o %s -o IdentitiesOnly=yes"
            % _ssh_option("UserKnownHostsFile", self.path("known_hosts")),
            # The controller's own Python is on this machine too, and suits the ansible-core that runs.
            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        }

    def _write_client_files(self, host_key):
        public_host_key = host_key.export_public_key().decode().split()
        address = LOOPBACK if self.port == 22 else "[%s]:%d" % (LOOPBACK, self.port)
        _write_file(self.path("known_hosts"), "%s %s %s\n" % (address, public_host_key[0], public_host_key[1]), 0o644)
        config = [
            "# ssh -F %s HOSTNAME@hzel: the container HOSTNAME through the emulator's gateway"
            % self.path("ssh_config"),
            "Host hzel",
            "    HostName %s" % LOOPBACK,
            "    Port %d" % self.port,
            '    IdentityFile "%s"' % self.path(CLIENT_KEY),
            "    IdentitiesOnly yes",
            '    UserKnownHostsFile "%s"' % self.path("known_hosts"),
            "    StrictHostKeyChecking yes",
        ]
        _write_file(self.path("ssh_config"), "\n".join(config) + "\n", 0o644)
        # Last, so that a reader who finds gateway.json finds everything it names.
        _write_file(self.path("gateway.json"), json.dumps(self.describe(), indent=2) + "\n", 0o644)

    # who may connect -----------------------------------------------------------
    def reachable(self, name, owner=EVERY_CONTAINER, by_id=False):
        """(record, None) when the container name takes connections, else (None, why not).

        Among the containers the key reaches (owner: a user id, or EVERY_CONTAINER), a login names the
        container of that hostname, and only when no hostname matches, the container of that id: a user
        who names a container after another one's id (a UUID is a valid DNS label) reaches their own
        container by that name, never the other one. by_id matches ids only, for the checks of a
        container already logged in to.
        """
        records = self.store.containers_for_login(name, owner)
        by_hostname = [record for record in records if record["hostname"] == name]
        if by_id or not by_hostname:
            records = [record for record in records if record["id"] == name]
        else:
            records = by_hostname
        if not records:
            return None, "no container has that name"
        if len(records) > 1:
            return None, "%d containers are named %s; log in with the container id instead" % (len(records), name)
        record = records[0]
        if record["state"] != "running":
            return None, "container %s is %s; it takes connections only while running" % (
                record["hostname"],
                record["state"],
            )
        if time.monotonic() < self._booting.get(record["id"], 0.0):
            return None, "container %s is booting after a start or restart; try again shortly" % record["hostname"]
        return record, None

    def register(self, connection):
        self._by_container.setdefault(connection.container["id"], set()).add(connection)

    def forget(self, connection):
        self.connections.discard(connection)
        if connection.container is not None:
            self._by_container.get(connection.container["id"], set()).discard(connection)

    def _power_changed(self, container_id, state):
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is self._loop:
            self._went_away(container_id, state)
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self._went_away, container_id, state)

    def _went_away(self, container_id, state):
        """A power action (or a reset) took the machine away: its processes and connections end."""
        if container_id is None:
            containers = set(self._by_container) | set(self._groups)
            self._booting.clear()
        else:
            containers = {container_id}
            if state == "running":
                self._booting[container_id] = time.monotonic() + self.boot_seconds
        if state == "running":
            reason = "the container restarted"
        else:
            reason = "the container went away (%s)" % (state or "removed")
        for each in containers:
            self._kill(each)
            for connection in list(self._by_container.pop(each, ())):
                connection.conn.disconnect(asyncssh.DISC_BY_APPLICATION, reason)

    def _kill(self, container_id):
        """Kill every process group the container's sessions started, ended sessions' included."""
        for group, leader in self._groups.pop(container_id, {}).items():
            if _group_runs(group, leader):
                try:
                    os.killpg(group, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def _track(self, record, child):
        self._groups.setdefault(record["id"], {})[child.pid] = child
        if self._sweeper is None:
            self._sweeper = self._loop.call_later(SWEEP_SECONDS, self._sweep)

    def _hang_up(self, child):
        """The session ended while its command ran (the client went away): its process group ends too."""
        if child.returncode is not None:
            return
        _signal_group(child, signal.SIGHUP)
        _signal_group(child, signal.SIGTERM)
        self._loop.call_later(HANGUP_GRACE_SECONDS, _kill_group, child)

    def _sweep(self):
        """Forget the process groups in which nothing runs any more (one timer, no thread per group)."""
        self._sweeper = None
        for container_id, groups in list(self._groups.items()):
            for group, leader in list(groups.items()):
                if not _group_runs(group, leader):
                    del groups[group]
            if not groups:
                del self._groups[container_id]
        if self._groups:
            self._sweeper = self._loop.call_later(SWEEP_SECONDS, self._sweep)

    # sessions ------------------------------------------------------------------
    async def _sftp(self, chan):
        """SFTP (and scp): the container is checked again, as for a command."""
        record, refusal = self.reachable(chan.get_extra_info("hzel_container")["id"], by_id=True)
        if refusal:
            chan.write_stderr(("hzel emulator: %s\n" % refusal).encode())
            chan.exit(255)
            # No server for this channel: asyncssh ends a session task that is cancelled quietly, where
            # a server on a closed channel would fail reading it and take the whole connection down.
            raise asyncio.CancelledError()
        return HomeSFTPServer(chan, self.home(record, chan.get_extra_info("username")))

    def _environment(self, record, home, term):
        env = {
            "HOME": home,
            "PWD": home,
            "PATH": PATH,
            "USER": record["hostname"],
            "LOGNAME": record["hostname"],
            "SHELL": "/bin/sh",
            "LANG": "C.UTF-8",
        }
        if term:
            env["TERM"] = term
        return env

    async def _session(self, process):
        """A command (exec) or a shell: /bin/sh in the container's home directory."""
        if process.subsystem is not None:
            # SFTP is served before this; other subsystems are not.
            process.stderr.write(("hzel emulator: no subsystem %s here\n" % process.subsystem).encode())
            process.exit(1)
            return
        record = process.get_extra_info("hzel_container")
        record, refusal = self.reachable(record["id"], by_id=True)
        if refusal:
            process.stderr.write(("hzel emulator: %s\n" % refusal).encode())
            process.exit(255)
            return
        home = self.home(record, process.get_extra_info("username"))
        term = process.get_terminal_type()
        command = process.command
        if command is not None:
            argv = ["/bin/sh", "-c", command]
        else:
            argv = ["/bin/sh", "-i"] if term else ["/bin/sh"]
        env = self._environment(record, home, term)
        try:
            if term:
                status = await self._on_terminal(process, record, argv, home, env)
            else:
                status = await self._on_pipes(process, record, argv, home, env)
        except OSError as exc:
            process.stderr.write(("hzel emulator: cannot run /bin/sh: %s\n" % exc).encode())
            process.exit(255)
            return
        if status is None:
            return
        if status < 0:
            try:
                name = signal.Signals(-status).name[3:]
            except ValueError:
                name = "KILL"
            process.exit_with_signal(name)
        else:
            process.exit(status)

    async def _on_pipes(self, process, record, argv, home, env):
        child = await asyncio.create_subprocess_exec(
            *argv,
            cwd=home,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self._track(record, child)
        feeding = asyncio.ensure_future(_feed_pipe(process, child))
        output = asyncio.ensure_future(
            asyncio.gather(_copy(child.stdout, process.stdout), _copy(child.stderr, process.stderr))
        )
        closed = asyncio.ensure_future(process.wait_closed())
        try:
            await asyncio.wait({output, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not output.done():
                # The client went away: the command is hung up on (below), and its output drained.
                return None
            return await child.wait()
        finally:
            feeding.cancel()
            closed.cancel()
            self._hang_up(child)

    async def _on_terminal(self, process, record, argv, home, env):
        master, slave = os.openpty()
        _set_size(master, process.get_terminal_size())
        try:
            child = await asyncio.create_subprocess_exec(
                *argv,
                cwd=home,
                env=env,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=_take_terminal,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self._track(record, child)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        read_transport, _protocol = await loop.connect_read_pipe(
            lambda: _TerminalProtocol(reader), os.fdopen(master, "rb", buffering=0)
        )
        write_transport, _protocol = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(os.dup(master), "wb", 0))
        feeding = asyncio.ensure_future(_feed_terminal(process, child, write_transport, master))
        output = asyncio.ensure_future(_copy(reader, process.stdout))
        waiting = asyncio.ensure_future(child.wait())
        closed = asyncio.ensure_future(process.wait_closed())
        try:
            await asyncio.wait({waiting, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not waiting.done():
                # The client went away: the terminal hangs up (below).
                return None
            # The rest of its output; children that keep the terminal open do not keep the session.
            await asyncio.wait({output}, timeout=PTY_DRAIN_SECONDS)
            return waiting.result()
        finally:
            closed.cancel()
            feeding.cancel()
            output.cancel()
            read_transport.close()
            write_transport.close()
            self._hang_up(child)


def _watch_children_without_threads(loop):
    """Have asyncio wait for the commands with pidfds, as it does by itself from Python 3.12 on.

    Before, its default spends a thread on each command while it runs, a command left behind by its
    session included. Without pidfds (not Linux, or a kernel before 5.3), that default stays.
    """
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open") or not hasattr(asyncio, "PidfdChildWatcher"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(loop)
    asyncio.set_child_watcher(watcher)


def _group_runs(group, leader):
    """Whether the process group a session started may still hold a process.

    Until its leader is reaped, the group id stays taken (by the leader, if only as a zombie). After
    that, the id stays taken while any process is in the group, and is free to be reused only once the
    group is empty: the periodic sweep forgets such a group within SWEEP_SECONDS, long before the
    system hands out that id again.
    """
    if leader.returncode is None:
        return True
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class _TerminalProtocol(asyncio.StreamReaderProtocol):
    """A terminal whose last holder closed it reads EIO: its end of file, after the output before it."""

    def connection_lost(self, exc):
        super().connection_lost(None if isinstance(exc, OSError) and exc.errno == errno.EIO else exc)


def _take_terminal():
    """In the child, after setsid: the terminal on its stdin becomes its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _set_size(descriptor, size):
    width, height, pixwidth, pixheight = size
    if width and height:
        fcntl.ioctl(descriptor, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, pixwidth, pixheight))


def _kill_group(child):
    if _group_runs(child.pid, child):
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _signal_group(child, number):
    if child.returncode is None:
        try:
            os.killpg(child.pid, number)
        except ProcessLookupError:
            pass


def _signal_number(name):
    return getattr(signal, "SIG" + name, None) if re.match(r"^[A-Z0-9]+$", name or "") else None


async def _copy(source, channel):
    """Forward a command's output to the channel; after the client went away, drain it."""
    connected = True
    while True:
        try:
            data = await source.read(CHUNK)
        except OSError:
            # A terminal whose last holder closed it reads EIO: its end of file.
            data = b""
        if not data:
            break
        if connected:
            try:
                channel.write(data)
                await channel.drain()
            except (OSError, asyncssh.Error):
                connected = False


async def _feed_pipe(process, child):
    """The channel's input to the command's stdin; its end of file closes the pipe."""
    open_ = True
    while True:
        try:
            data = await process.stdin.read(CHUNK)
        except asyncssh.SignalReceived as exc:
            number = _signal_number(exc.signal)
            if number is not None:
                _signal_group(child, number)
            continue
        except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged):
            continue
        except (OSError, asyncssh.Error):
            break
        if not data:
            break
        if open_:
            try:
                child.stdin.write(data)
                await child.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                # The command does not read any more; the rest is discarded, as sshd does.
                open_ = False
    if open_:
        try:
            child.stdin.close()
        except OSError:
            pass


async def _feed_terminal(process, child, transport, master):
    """Keystrokes to the terminal; the channel's end of file is the terminal's (^D)."""
    while True:
        try:
            data = await process.stdin.read(CHUNK)
        except asyncssh.TerminalSizeChanged as exc:
            _set_size(master, (exc.width, exc.height, exc.pixwidth, exc.pixheight))
            continue
        except asyncssh.BreakReceived:
            _signal_group(child, signal.SIGINT)
            continue
        except asyncssh.SignalReceived as exc:
            number = _signal_number(exc.signal)
            if number is not None:
                _signal_group(child, number)
            continue
        except (OSError, asyncssh.Error):
            return
        if transport.is_closing():
            return
        transport.write(data or b"\x04")
        if not data:
            return


def quiet_logging(level):
    """asyncssh logs each connection at INFO; the emulator's log keeps to warnings unless asked."""
    logging.getLogger("asyncssh").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
