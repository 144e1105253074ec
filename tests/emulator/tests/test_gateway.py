# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SSH gateway: running containers reached with the real OpenSSH client, asyncssh's SFTP and Ansible."""

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import time

import asyncssh
import pytest
from conftest import Emulator

ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


class Gateway:
    """An emulator started with its SSH gateway, and an OpenSSH client pointed at it."""

    def __init__(self, directory, boot_seconds=0.0):
        self.directory = str(directory)
        self.ssh_dir = os.path.join(self.directory, "ssh")
        self.emulator = Emulator(
            os.path.join(self.directory, "hzel.sqlite3"),
            provision_seconds=0.3,
            extra_args=["--ssh-port", "0", "--ssh-dir", self.ssh_dir, "--boot-seconds", str(boot_seconds)],
        )
        self.info = None

    def start(self):
        self.emulator.start()
        with open(os.path.join(self.ssh_dir, "gateway.json"), encoding="utf-8") as handle:
            self.info = json.load(handle)
        return self

    def stop(self):
        self.emulator.stop()

    @property
    def port(self):
        return self.info["port"]

    def ssh_args(self, login, key=None, known_hosts=None):
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            key or self.info["identity_file"],
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "UserKnownHostsFile=" + (known_hosts or self.info["known_hosts"]),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-p",
            str(self.port),
            login + "@127.0.0.1",
        ]

    def ssh(self, login, command, stdin=None, options=(), **kwargs):
        return subprocess.run(
            self.ssh_args(login, **kwargs)[:-1] + list(options) + [login + "@127.0.0.1", command],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def running(self, hostname, token="alice"):
        record = self.emulator.create(hostname, token=token)
        return self.wait_for(record["id"], "running", token)

    def wait_for(self, container_id, state, token="alice"):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            record = self.emulator.api("GET", "/containers/" + container_id, token=token).json()["data"]
            if record["state"] == state:
                return record
            time.sleep(0.05)
        raise AssertionError("container %s never became %s" % (container_id, state))

    def power(self, container_id, action, token="alice"):
        response = self.emulator.api("POST", "/containers/%s/%s" % (container_id, action), token=token)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def home(self, record):
        return os.path.join(os.path.realpath(self.ssh_dir), "homes", record["id"])

    def connect(self, login, action, key=None):
        """Run action(connection) over an asyncssh connection as login."""

        async def session():
            async with asyncssh.connect(
                "127.0.0.1",
                self.port,
                username=login,
                client_keys=[key or self.info["identity_file"]],
                known_hosts=self.info["known_hosts"],
                agent_path=None,
                config=None,
            ) as conn:
                return await action(conn)

        return asyncio.run(session())

    def sftp(self, login, action, key=None):
        """Run action(sftp_client) over an asyncssh SFTP session as login."""

        async def session(conn):
            async with conn.start_sftp_client() as client:
                return await action(client)

        return self.connect(login, session, key=key)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    instance = Gateway(tmp_path_factory.mktemp("gateway")).start()
    yield instance
    instance.stop()


def refused(result, why):
    assert result.returncode == 255, result
    assert "Permission denied (publickey)" in result.stderr, result.stderr
    if why:
        assert why in result.stderr, result.stderr


def test_a_running_container_runs_commands_in_its_own_home(gateway):
    record = gateway.running("home-1")
    result = gateway.ssh("home-1", 'pwd; echo "$HOME"; echo "$USER"')
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [gateway.home(record), gateway.home(record), "home-1"]


def test_the_exit_status_stdout_and_stderr_come_back(gateway):
    gateway.running("status-1")
    result = gateway.ssh("status-1", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_stdin_reaches_the_command_and_its_end_ends_it(gateway):
    gateway.running("stdin-1")
    result = gateway.ssh("stdin-1", "cat; echo done", stdin="piped\n")
    assert (result.returncode, result.stdout) == (0, "piped\ndone\n")


def test_a_terminal_is_given_when_asked(gateway):
    gateway.running("tty-1")
    result = gateway.ssh("tty-1", "tty; exit 4", options=["-tt"])
    assert result.returncode == 4 and result.stdout.startswith("/dev/pts/"), result


def test_subsystems_other_than_sftp_are_refused(gateway):
    gateway.running("subsystem-1")
    result = gateway.ssh("subsystem-1", "netconf", options=["-s"])
    assert result.returncode == 1 and "no subsystem netconf" in result.stderr, result


def test_an_unknown_name_is_refused(gateway):
    refused(gateway.ssh("nobody-here", "true"), "no container has that name")


def test_provisioning_stopped_and_failed_containers_are_refused(gateway):
    gateway.emulator.control("PUT", "/settings", json={"provision_seconds": 600})
    try:
        slow = gateway.emulator.create("slow-1")
    finally:
        gateway.emulator.control("PUT", "/settings", json={"provision_seconds": 0.3})
    refused(gateway.ssh("slow-1", "true"), "container slow-1 is provisioning")
    stopped = gateway.running("stopped-1")
    gateway.power(stopped["id"], "stop")
    refused(gateway.ssh("stopped-1", "true"), "container stopped-1 is stopped")
    failed = gateway.emulator.create("fail-1")
    gateway.wait_for(failed["id"], "failed")
    refused(gateway.ssh("fail-1", "true"), "container fail-1 is failed")
    assert slow["state"] == "provisioning"


def test_a_key_other_than_the_gateways_is_refused_without_a_reason(gateway, tmp_path):
    other = asyncssh.generate_private_key("ssh-ed25519")
    other.write_private_key(str(tmp_path / "other"))
    os.chmod(tmp_path / "other", 0o600)
    gateway.running("key-1")
    result = gateway.ssh("key-1", "true", key=str(tmp_path / "other"))
    refused(result, None)
    assert "hzel emulator" not in result.stderr


def test_a_host_key_other_than_known_hosts_says_is_refused(gateway, tmp_path):
    gateway.running("hostkey-1")
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()
    (tmp_path / "known_hosts").write_text("[127.0.0.1]:%d %s %s\n" % (gateway.port, impostor[0], impostor[1]))
    result = gateway.ssh("hostkey-1", "true", known_hosts=str(tmp_path / "known_hosts"))
    assert result.returncode == 255 and "Host key verification failed" in result.stderr, result


def test_a_hostname_that_names_two_containers_is_refused_and_the_id_logs_in(gateway):
    gateway.emulator.control("PUT", "/settings", json={"hostname_scope": "owner"})
    try:
        mine = gateway.running("twin-1", token="alice")
        gateway.running("twin-1", token="bob")
    finally:
        gateway.emulator.control("PUT", "/settings", json={"hostname_scope": "platform"})
    refused(gateway.ssh("twin-1", "true"), "2 containers are named twin-1")
    result = gateway.ssh(mine["id"], "pwd")
    assert (result.returncode, result.stdout) == (0, gateway.home(mine) + "\n"), result
    # The owner's own key reaches only their own twin.
    result = gateway.ssh("twin-1", "pwd", key=gateway.info["user_keys"]["alice"])
    assert (result.returncode, result.stdout) == (0, gateway.home(mine) + "\n"), result


def test_the_home_directory_survives_stop_and_start(gateway):
    record = gateway.running("keep-1")
    assert gateway.ssh("keep-1", "echo kept > note.txt").returncode == 0
    gateway.power(record["id"], "stop")
    refused(gateway.ssh("keep-1", "cat note.txt"), "is stopped")
    gateway.power(record["id"], "start")
    result = gateway.ssh("keep-1", "cat note.txt")
    assert (result.returncode, result.stdout) == (0, "kept\n"), result


def _session_started(gateway, login):
    """An open session running a long command: (the ssh client, the command's pid)."""
    client = subprocess.Popen(
        gateway.ssh_args(login) + ["echo $$; exec sleep 600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return client, int(client.stdout.readline())


def _gone(pid, seconds=30):
    """Whether the process ends within a bounded wait (a zombie has ended, whoever is to reap it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_a_client_that_goes_away_hangs_up_its_command(gateway):
    gateway.running("hangup-1")
    client, pid = _session_started(gateway, "hangup-1")
    client.kill()
    client.wait(timeout=30)
    assert _gone(pid)


@pytest.mark.parametrize(
    "login, command, options",
    [
        ("abandon-1", "nohup sh -c 'sleep 601 & echo $!; wait'", []),
        ("abandon-2", 'trap "" HUP TERM; sleep 602 & echo $!; wait', []),
        ("abandon-3", 'trap "" HUP TERM; sleep 603 & echo $!; wait', ["-tt"]),
    ],
    ids=["nohup", "ignores-hup-and-term", "ignores-hup-and-term-on-a-terminal"],
)
def test_a_client_that_goes_away_ends_its_commands_even_those_that_ignore_the_hangup(gateway, login, command, options):
    gateway.running(login)
    client = subprocess.Popen(
        gateway.ssh_args(login)[:-1] + options + [login + "@127.0.0.1", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    pid = int(client.stdout.readline())
    try:
        client.kill()
        client.wait(timeout=30)
        assert _gone(pid)
    finally:
        client.stdout.close()
        _kill_if_sleep(pid)


def test_a_stop_drops_open_sessions_and_ends_their_commands(gateway):
    record = gateway.running("drop-1")
    client, pid = _session_started(gateway, "drop-1")
    gateway.power(record["id"], "stop")
    assert client.wait(timeout=30) == 255 and _gone(pid)


def test_without_a_boot_delay_a_restarted_container_takes_connections_at_once(gateway):
    record = gateway.running("reboot-1")
    client, pid = _session_started(gateway, "reboot-1")
    gateway.power(record["id"], "restart")
    assert client.wait(timeout=30) == 255 and _gone(pid)
    assert gateway.ssh("reboot-1", "true").returncode == 0


def test_a_restart_refuses_connections_while_the_container_boots(tmp_path):
    booting = Gateway(tmp_path, boot_seconds=600).start()
    try:
        record = booting.running("boot-1")
        client, pid = _session_started(booting, "boot-1")
        booting.power(record["id"], "restart")
        assert client.wait(timeout=30) == 255 and _gone(pid)
        refused(booting.ssh("boot-1", "true"), "container boot-1 is booting")
        assert booting.wait_for(record["id"], "running")["state"] == "running"
    finally:
        booting.stop()


def test_sftp_puts_and_gets_inside_the_home_by_relative_and_absolute_paths(gateway, tmp_path):
    record = gateway.running("sftp-1")
    home = gateway.home(record)
    (tmp_path / "up.txt").write_text("up")

    async def transfer(client):
        await client.put(str(tmp_path / "up.txt"), "relative.txt")
        await client.mkdir(home + "/sub")
        await client.put(str(tmp_path / "up.txt"), home + "/sub/absolute.txt")
        await client.get("sub/absolute.txt", str(tmp_path / "down.txt"))
        return await client.realpath("."), sorted(await client.listdir("."))

    cwd, names = gateway.sftp("sftp-1", transfer)
    assert cwd == home
    assert {"relative.txt", "sub"} <= set(names)
    assert (tmp_path / "down.txt").read_text() == "up"
    with open(os.path.join(home, "relative.txt"), encoding="utf-8") as handle:
        assert handle.read() == "up"


@pytest.mark.parametrize("protocol", [["-O"], []], ids=["legacy-scp", "scp-over-sftp"])
def test_scp_copies_into_and_out_of_the_home(gateway, tmp_path, protocol):
    login = "scp-%d" % len(protocol)
    record = gateway.running(login)
    (tmp_path / "up.txt").write_text("scp")
    options = gateway.ssh_args(login)[1:-3] + ["-P", str(gateway.port)] + protocol
    remote = "%s@127.0.0.1:" % login
    subprocess.run(["scp"] + options + [str(tmp_path / "up.txt"), remote + "up.txt"], check=True, timeout=60)
    subprocess.run(["scp"] + options + [remote + "up.txt", str(tmp_path / "down.txt")], check=True, timeout=60)
    assert (tmp_path / "down.txt").read_text() == "scp"
    assert os.path.isfile(os.path.join(gateway.home(record), "up.txt"))
    refused_copy = subprocess.run(
        ["scp"] + options + [remote + "/etc/hostname", str(tmp_path / "escaped")],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert refused_copy.returncode != 0 and not (tmp_path / "escaped").exists()


ESCAPES = ["../escape.txt", "../../hzel.sqlite3", "/etc/hostname", "/tmp/escape.txt", "link-out/hostname"]


@pytest.mark.parametrize("path", ESCAPES)
def test_sftp_refuses_paths_that_leave_the_home(gateway, path):
    login = "jail-%d" % ESCAPES.index(path)
    gateway.running(login)
    assert gateway.ssh(login, "ln -sfn /etc link-out").returncode == 0

    async def escape(client):
        with pytest.raises((asyncssh.SFTPPermissionDenied, asyncssh.SFTPNoSuchFile)):
            await client.open(path, "r")
        with pytest.raises((asyncssh.SFTPPermissionDenied, asyncssh.SFTPNoSuchFile)):
            await client.open(path, "w")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await client.symlink("/etc", "link-made")
        return sorted(await client.listdir("."))

    assert "link-out" in gateway.sftp(login, escape)
    assert not os.path.exists("/tmp/escape.txt")


def _listening_addresses(port):
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            for line in handle.readlines()[1:]:
                local, _remote, state = line.split()[1:4]
                address, local_port = local.split(":")
                if int(local_port, 16) == port and state == "0A":
                    addresses.add(address)
    return addresses


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads the Linux socket table")
def test_the_gateway_listens_on_loopback_only(gateway):
    assert _listening_addresses(gateway.port) == {"0100007F"}


def test_keys_are_private_and_kept_and_known_hosts_names_the_port(tmp_path):
    first = Gateway(tmp_path).start()
    first.stop()
    key = open(first.info["identity_file"], encoding="ascii").read()
    second = Gateway(tmp_path).start()
    try:
        for name in ("id_ed25519", "ssh_host_ed25519_key"):
            assert stat.S_IMODE(os.stat(os.path.join(second.ssh_dir, name)).st_mode) == 0o600
        assert open(second.info["identity_file"], encoding="ascii").read() == key
        with open(second.info["known_hosts"], encoding="ascii") as handle:
            assert handle.read().startswith("[127.0.0.1]:%d ssh-ed25519 " % second.port)
        assert second.info["ansible_vars"]["ansible_port"] == second.port
    finally:
        second.stop()
    assert not os.path.exists(os.path.join(second.ssh_dir, "gateway.json"))


def test_ansible_reaches_a_container_with_its_ssh_connection(gateway, tmp_path):
    gateway.running("ansible-1")
    inventory = {"all": {"hosts": {"ansible-1": None}, "vars": gateway.info["ansible_vars"]}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    env = dict(
        os.environ,
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "local"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="True",
    )

    def ansible(module, args=None, **extra_env):
        command = [ANSIBLE, "all", "-i", str(tmp_path / "inventory.json"), "-m", module]
        result = subprocess.run(
            command + (["-a", args] if args else []),
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(env, **extra_env),
            check=False,
        )
        assert result.returncode == 0, result
        return result.stdout

    assert '"ping": "pong"' in ansible("ansible.builtin.ping")
    assert '"changed": true' in ansible("ansible.builtin.copy", "content=over-ssh dest=~/copied.txt")
    # Pipelining: the module goes in on stdin, no file transfer.
    slurped = ansible("ansible.builtin.slurp", "src=copied.txt", ANSIBLE_PIPELINING="True")
    assert '"content": "b3Zlci1zc2g="' in slurped


def test_a_container_named_after_another_users_container_id_logs_each_owner_into_their_own(gateway):
    mine = gateway.running("named-1", token="alice")
    # A UUID is a valid DNS label: another user may name a container after this one's id.
    theirs = gateway.running(mine["id"], token="bob")

    def lands_in(login, key, record):
        result = gateway.ssh(login, "pwd", key=key)
        assert (result.returncode, result.stdout) == (0, gateway.home(record) + "\n"), (login, key, result)

    # A hostname wins over an id, among the containers the key reaches (the gateway's key: every one).
    lands_in(mine["id"], None, theirs)
    alice, bob = gateway.info["user_keys"]["alice"], gateway.info["user_keys"]["bob"]
    lands_in(mine["id"], bob, theirs)
    # Where no hostname of the key's owner matches, the id does: alice reaches hers by its id.
    lands_in(mine["id"], alice, mine)
    lands_in("named-1", alice, mine)
    lands_in(theirs["id"], bob, theirs)
    # A user's key never reaches another user's container, by hostname or by id.
    refused(gateway.ssh("named-1", "true", key=bob), "no container has that name")
    refused(gateway.ssh(theirs["id"], "true", key=alice), "no container has that name")

    async def where(client):
        return await client.realpath(".")

    assert gateway.sftp(mine["id"], where) == gateway.home(theirs)
    assert gateway.sftp(mine["id"], where, key=alice) == gateway.home(mine)


def test_each_user_has_a_private_key_kept_across_restarts(tmp_path):
    first = Gateway(tmp_path).start()
    try:
        keys = dict(first.info["user_keys"])
    finally:
        first.stop()
    assert sorted(keys) == ["admin", "alice", "bob"]
    contents = {name: open(path, "rb").read() for name, path in keys.items()}
    for path in keys.values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    second = Gateway(tmp_path).start()
    try:
        assert second.info["user_keys"] == keys
        assert {name: open(path, "rb").read() for name, path in keys.items()} == contents
    finally:
        second.stop()


def test_an_admins_key_reaches_every_users_container(gateway):
    record = gateway.running("admin-reach-1", token="bob")
    result = gateway.ssh("admin-reach-1", "pwd", key=gateway.info["user_keys"]["admin"])
    assert (result.returncode, result.stdout) == (0, gateway.home(record) + "\n"), result


def _set_state_behind_the_api(gateway, container_id, state):
    """Change the stored state without the power action's notice: as between authentication and a session."""
    with sqlite3.connect(gateway.emulator.db) as db:
        db.execute("UPDATE containers SET state = ? WHERE id = ?", (state, container_id))


def test_a_session_opened_after_the_container_went_away_is_refused_for_commands_sftp_and_scp(gateway):
    record = gateway.running("recheck-1")

    async def sessions(conn):
        _set_state_behind_the_api(gateway, record["id"], "stopped")
        try:
            command = await conn.run("echo ran", check=False)
            with pytest.raises(asyncssh.SFTPError):
                async with conn.start_sftp_client() as client:
                    await client.listdir(".")
            copier = await conn.create_process("scp -t copied.txt")
            try:
                copier.stdin.write_eof()
            except OSError:
                pass  # The refusal closed the channel already.
            copy = await copier.wait(check=False)
        finally:
            _set_state_behind_the_api(gateway, record["id"], "running")
        # A refused session leaves the connection up.
        return command, copy, await conn.run("echo back", check=False)

    command, copy, back = gateway.connect("recheck-1", sessions)
    for refused_session in (command, copy):
        assert refused_session.exit_status == 255 and refused_session.stdout == "", refused_session
        assert "container recheck-1 is stopped" in refused_session.stderr, refused_session
    assert (back.exit_status, back.stdout) == (0, "back\n"), back
    assert not os.path.exists(os.path.join(gateway.home(record), "copied.txt"))


def test_sftp_refuses_a_link_that_leads_out_through_the_home_link(gateway):
    record = gateway.running("linkout-1")
    home = gateway.home(record)

    async def link(client):
        for target in ("~linkout-1/..", home + "/~linkout-1/..", "~linkout-1/../" + record["id"] + "/.."):
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await client.symlink(target, "tl")
        await client.mkdir("sub")
        await client.symlink("../~linkout-1/sub", "sub/inner")
        await client.symlink("~linkout-1/../" + record["id"] + "/sub", "back")
        return sorted(await client.listdir("."))

    names = gateway.sftp("linkout-1", link)
    assert "tl" not in names and {"back", "sub"} <= set(names)
    assert os.path.realpath(os.path.join(home, "sub", "inner")) == os.path.join(home, "sub")
    assert os.path.realpath(os.path.join(home, "back")) == os.path.join(home, "sub")


def _threads_and_descriptors(pid):
    return len(os.listdir("/proc/%d/task" % pid)), len(os.listdir("/proc/%d/fd" % pid))


def _settles(measure, limit, seconds=30):
    """Whether measure() comes down to no more than limit within a bounded wait."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(now <= then for now, then in zip(measure(), limit)):
            return True
        time.sleep(0.05)
    return False


def _kill_if_sleep(pid):
    """Clean up a sleep a test started through the gateway, should it have survived."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            if handle.read().split(b"\0")[0].endswith(b"sleep"):
                os.kill(pid, 9)
    except (OSError, ProcessLookupError):
        pass


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads and descriptors in /proc")
@pytest.mark.parametrize("action", ["stop", "restart", "reset"])
def test_a_power_action_ends_the_commands_sessions_left_behind_without_leaking_threads_or_descriptors(tmp_path, action):
    gateway = Gateway(tmp_path).start()
    leftovers = []
    try:
        record = gateway.running("leftover-1")
        emulator = gateway.emulator.process.pid
        before = _threads_and_descriptors(emulator)
        detached = gateway.ssh("leftover-1", "nohup sleep 57 >/dev/null 2>&1 & echo $!")
        assert detached.returncode == 0, detached
        leftovers.append(int(detached.stdout))
        # A command that ignores the hangup of its session, whose client went away.
        client = subprocess.Popen(
            gateway.ssh_args("leftover-1") + ['trap "" HUP; sleep 58 & echo $!; wait'],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        leftovers.append(int(client.stdout.readline()))
        client.kill()
        client.wait(timeout=30)
        client.stdout.close()
        if action == "reset":
            gateway.emulator.control("POST", "/reset")
        else:
            gateway.power(record["id"], action)
        assert all(_gone(pid, seconds=10) for pid in leftovers)
        assert _settles(lambda: _threads_and_descriptors(emulator), before)
    finally:
        for pid in leftovers:
            _kill_if_sleep(pid)
        gateway.stop()
