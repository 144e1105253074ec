# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite-backed state of the hzel API emulator.

Everything the emulator knows (users, tokens, sessions, containers) lives in one
SQLite file, so a restarted emulator carries on where it stopped.
"""

import hashlib
import os
import secrets
import sqlite3
import threading
import time
from datetime import datetime, timezone

# Where the spec is silent the emulator makes these choices (see README.md beside this package).
CPU_CORES_RANGE = (1, 8)
MEMORY_MB_RANGE = (128, 16384)
DISK_GB_RANGE = (18, 32)
DEFAULTS = {"cpu_cores": 1, "memory_mb": 512, "disk_gb": 18}
FAIL_PREFIX = "fail-"

RECORD_FIELDS = ("id", "user_id", "hostname", "state", "cpu_cores", "memory_mb", "disk_gb", "created_at")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    admin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id)
);
CREATE TABLE IF NOT EXISTS sessions (
    cookie TEXT PRIMARY KEY,
    csrf TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id)
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    hostname TEXT NOT NULL,
    state TEXT NOT NULL,
    cpu_cores INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    disk_gb INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    ready_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS containers_owner_hostname ON containers(user_id, hostname);
CREATE INDEX IF NOT EXISTS containers_hostname ON containers(hostname);
CREATE INDEX IF NOT EXISTS containers_provisioning ON containers(state, ready_at);
"""

DEFAULT_USERS = [
    {"name": "admin", "admin": True, "tokens": ["hzel-admin-token"], "sessions": []},
    {
        "name": "alice",
        "admin": False,
        "tokens": ["hzel-demo-token"],
        "sessions": [{"cookie": "alice-session", "csrf": "alice-csrf"}],
    },
    {"name": "bob", "admin": False, "tokens": ["hzel-bob-token"], "sessions": []},
]


def uuid7():
    """Return a UUIDv7 string: 48 bits of Unix milliseconds, then random bits."""
    value = (int(time.time() * 1000) & ((1 << 48) - 1)) << 80
    value |= secrets.randbits(80)
    value &= ~(0xF << 76)
    value |= 0x7 << 76
    value &= ~(0x3 << 62)
    value |= 0x2 << 62
    text = "%032x" % value
    return "%s-%s-%s-%s-%s" % (text[:8], text[8:12], text[12:16], text[16:20], text[20:])


def utc_now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class HostnameTaken(Exception):
    pass


class Store:
    """All reads and writes go through one connection guarded by one lock.

    SQLite serialises writers anyway; the lock keeps the check-then-insert of a
    create atomic, and the UNIQUE constraint on hostname is the last word.
    """

    HOSTNAME_SCOPES = ("platform", "owner")

    def __init__(self, path, provision_seconds=1.0, hostname_scope="platform"):
        self.path = path
        self.provision_seconds = float(provision_seconds)
        # "platform": a hostname is unique on the whole platform, as DNS names are (the default);
        # "owner": unique per user only, so an admin can see two containers of one name.
        self.hostname_scope = hostname_scope
        # Called with (container id, new state) after each power action, and with (None, None) after a
        # reset: the SSH gateway drops the sessions of a machine that went away.
        self.power_listeners = []
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    # users and credentials -------------------------------------------------
    def seed_users(self, users):
        """Add users, tokens and sessions; existing names keep their id."""
        with self._lock:
            for user in users:
                row = self._db.execute("SELECT id FROM users WHERE name = ?", (user["name"],)).fetchone()
                user_id = row[0] if row else uuid7()
                self._db.execute(
                    "INSERT INTO users (id, name, admin) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET admin = excluded.admin",
                    (user_id, user["name"], 1 if user.get("admin") else 0),
                )
                for token in user.get("tokens", []):
                    self._db.execute("INSERT OR REPLACE INTO tokens (token, user_id) VALUES (?, ?)", (token, user_id))
                for session in user.get("sessions", []):
                    self._db.execute(
                        "INSERT OR REPLACE INTO sessions (cookie, csrf, user_id) VALUES (?, ?, ?)",
                        (session["cookie"], session["csrf"], user_id),
                    )

    def user_for_token(self, token):
        with self._lock:
            return self._fetch_user(
                "SELECT u.id, u.name, u.admin FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token = ?", token
            )

    def user_for_session(self, cookie):
        with self._lock:
            row = self._db.execute(
                "SELECT u.id, u.name, u.admin, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id "
                "WHERE s.cookie = ?",
                (cookie,),
            ).fetchone()
        if row is None:
            return None
        return {"id": row[0], "name": row[1], "admin": bool(row[2]), "csrf": row[3]}

    def _fetch_user(self, query, key):
        row = self._db.execute(query, (key,)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "name": row[1], "admin": bool(row[2]), "csrf": None}

    def user_id_by_name(self, name):
        with self._lock:
            row = self._db.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    # containers -----------------------------------------------------------
    def _settle(self, now=None):
        """Finish the provisioning whose delay has passed (caller holds the lock)."""
        now = time.time() if now is None else now
        self._db.execute(
            "UPDATE containers SET state = CASE WHEN hostname LIKE ? THEN 'failed' ELSE 'running' END "
            "WHERE state = 'provisioning' AND ready_at <= ?",
            (FAIL_PREFIX + "%", now),
        )

    @staticmethod
    def _record(row):
        return dict(zip(RECORD_FIELDS, row))

    def list_containers(self, user):
        columns = ", ".join(RECORD_FIELDS)
        with self._lock:
            self._settle()
            if user["admin"]:
                rows = self._db.execute("SELECT %s FROM containers ORDER BY id" % columns).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT %s FROM containers WHERE user_id = ? ORDER BY id" % columns, (user["id"],)
                ).fetchall()
        return [self._record(row) for row in rows]

    def get_container(self, user, container_id):
        """The record, or None when it does not exist or is not the user's."""
        with self._lock:
            self._settle()
            return self._get(user, container_id)

    def _get(self, user, container_id):
        row = self._db.execute(
            "SELECT %s, ready_at FROM containers WHERE id = ?" % ", ".join(RECORD_FIELDS), (container_id,)
        ).fetchone()
        if row is None:
            return None
        record = self._record(row[:-1])
        if not user["admin"] and record["user_id"] != user["id"]:
            return None
        record["_ready_at"] = row[-1]
        return record

    def create_container(self, user, spec):
        now = time.time()
        record = {
            "id": uuid7(),
            "user_id": user["id"],
            "hostname": spec["hostname"],
            "state": "provisioning",
            "cpu_cores": spec.get("cpu_cores", DEFAULTS["cpu_cores"]),
            "memory_mb": spec.get("memory_mb", DEFAULTS["memory_mb"]),
            "disk_gb": spec.get("disk_gb", DEFAULTS["disk_gb"]),
            "created_at": utc_now_iso(),
        }
        with self._lock:
            # Check and insert under one lock: two simultaneous creates of one hostname make one container.
            if self.hostname_scope == "platform":
                taken = self._db.execute("SELECT 1 FROM containers WHERE hostname = ?", (spec["hostname"],)).fetchone()
                if taken:
                    raise HostnameTaken(spec["hostname"])
            try:
                self._db.execute(
                    "INSERT INTO containers (%s, ready_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    % ", ".join(RECORD_FIELDS),
                    tuple(record[field] for field in RECORD_FIELDS) + (now + self.provision_seconds,),
                )
            except sqlite3.IntegrityError:
                raise HostnameTaken(spec["hostname"]) from None
        return record

    def set_state(self, user, container_id, state):
        with self._lock:
            self._db.execute("UPDATE containers SET state = ? WHERE id = ?", (state, container_id))
            record = self._get(user, container_id)
        self._tell(container_id, state)
        return record

    def list_users(self):
        with self._lock:
            rows = self._db.execute("SELECT id, name, admin FROM users ORDER BY name").fetchall()
        return [{"id": row[0], "name": row[1], "admin": bool(row[2])} for row in rows]

    def containers_for_login(self, name, owner_id=None):
        """The containers whose hostname or id is name (the SSH gateway's user name): owner_id's only, or everyone's."""
        query = "SELECT %s FROM containers WHERE (hostname = ? OR id = ?)" % ", ".join(RECORD_FIELDS)
        parameters = (name, name)
        if owner_id is not None:
            query += " AND user_id = ?"
            parameters += (owner_id,)
        with self._lock:
            self._settle()
            rows = self._db.execute(query + " ORDER BY id", parameters).fetchall()
        return [self._record(row) for row in rows]

    def _tell(self, container_id, state):
        for listener in list(self.power_listeners):
            listener(container_id, state)

    def seed_containers(self, owner_name, count, prefix, state="running"):
        """Bulk-create containers for benchmarks; returns how many were added."""
        user_id = self.user_id_by_name(owner_name)
        if user_id is None:
            raise KeyError(owner_name)
        created = utc_now_iso()
        rows = []
        for index in range(count):
            hostname = "%s%05d" % (prefix, index)
            digest = int(hashlib.sha256(hostname.encode()).hexdigest(), 16)
            rows.append(
                (
                    uuid7(),
                    user_id,
                    hostname,
                    state,
                    1 + digest % 4,
                    256 * (1 + digest % 8),
                    18 + digest % 15,
                    created,
                    0.0,
                )
            )
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO containers (%s, ready_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                % ", ".join(RECORD_FIELDS),
                rows,
            )
            self._db.execute("COMMIT")
            return self._db.total_changes - before

    def reset(self):
        with self._lock:
            self._db.execute("DELETE FROM containers")
        self._tell(None, None)

    def close(self):
        with self._lock:
            self._db.close()


def open_store(path, provision_seconds):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    return Store(path, provision_seconds)
