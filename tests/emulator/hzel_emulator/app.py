# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The hzel containers API, as the published reference describes it."""

import asyncio
import hashlib
import json
import re
import time

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .faults import FaultInjector, Faults
from .load import Load
from .store import CPU_CORES_RANGE, DISK_GB_RANGE, MEMORY_MB_RANGE, HostnameTaken

HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
SESSION_COOKIE = "hzel_session"
CREATE_FIELDS = {
    "hostname": None,
    "cpu_cores": CPU_CORES_RANGE,
    "memory_mb": MEMORY_MB_RANGE,
    "disk_gb": DISK_GB_RANGE,
}
ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "CSRF_REJECTED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
}

CREATE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["hostname"],
    "properties": {
        "hostname": {"type": "string", "pattern": HOSTNAME_RE.pattern, "maxLength": 63},
        "cpu_cores": {"type": "integer", "minimum": CPU_CORES_RANGE[0], "maximum": CPU_CORES_RANGE[1], "default": 1},
        "memory_mb": {"type": "integer", "minimum": MEMORY_MB_RANGE[0], "maximum": MEMORY_MB_RANGE[1], "default": 512},
        "disk_gb": {"type": "integer", "minimum": DISK_GB_RANGE[0], "maximum": DISK_GB_RANGE[1], "default": 18},
    },
}

RECORD_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "user_id", "hostname", "state", "cpu_cores", "memory_mb", "disk_gb", "created_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "user_id": {"type": "string", "format": "uuid"},
        "hostname": {"type": "string"},
        "state": {"type": "string", "enum": ["running", "stopped", "provisioning", "failed"]},
        "cpu_cores": {"type": "integer"},
        "memory_mb": {"type": "integer"},
        "disk_gb": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
METRICS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["cpu_percent", "memory_used_mb", "memory_total_mb", "disk_used_gb", "disk_total_gb"],
    "properties": {
        "cpu_percent": {"type": "number"},
        "memory_used_mb": {"type": "integer"},
        "memory_total_mb": {"type": "integer"},
        "disk_used_gb": {"type": "number"},
        "disk_total_gb": {"type": "integer"},
    },
}
ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
REASONS = {
    400: "BAD_REQUEST: missing or invalid fields",
    401: "UNAUTHORIZED: missing or invalid auth",
    403: "CSRF_REJECTED: session auth missing x-csrf-token",
    404: "NOT_FOUND: container not found or not owned by user",
}


def _documented(data_schema, *statuses):
    """OpenAPI responses of a route: the {"data": ...} envelope and the listed errors."""
    responses = {
        200: {
            "description": "Success",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["data"],
                        "properties": {"data": data_schema},
                    }
                }
            },
        }
    }
    for status in statuses:
        responses[status] = {"description": REASONS[status], "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    return responses


class ApiError(Exception):
    def __init__(self, status, message, code=None):
        super().__init__(message)
        self.status = status
        self.code = code or ERROR_CODES[status]
        self.message = message


def _json(payload, status=200):
    return Response(json.dumps(payload, separators=(",", ":")), status_code=status, media_type="application/json")


def _public(record):
    return {key: value for key, value in record.items() if not key.startswith("_")}


def authenticate(store, request):
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _sep, token = header.partition(" ")
        user = store.user_for_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if user is None:
            raise ApiError(401, "Missing or invalid auth")
        user["via"] = "bearer"
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    user = store.user_for_session(cookie) if cookie else None
    if user is None:
        raise ApiError(401, "Missing or invalid auth")
    user["via"] = "session"
    return user


def require_csrf(user, request):
    """Session callers must echo their CSRF token on every POST; Bearer callers are exempt."""
    if user["via"] == "session" and request.headers.get("x-csrf-token") != user["csrf"]:
        raise ApiError(403, "Session auth missing x-csrf-token")


def _is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def validate_create(request, raw):
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(400, "Content-Type must be application/json")
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    unknown = sorted(set(body) - set(CREATE_FIELDS))
    if unknown:
        raise ApiError(400, "Unknown field(s): %s" % ", ".join(unknown))
    hostname = body.get("hostname")
    if hostname is None:
        raise ApiError(400, "hostname: field required")
    if not isinstance(hostname, str) or not HOSTNAME_RE.fullmatch(hostname):
        raise ApiError(
            400,
            "hostname: must be a DNS label (lowercase letters, digits and hyphens, 1-63 characters, "
            "not starting or ending with a hyphen)",
        )
    for field, (low, high) in ((k, v) for k, v in CREATE_FIELDS.items() if v):
        if field not in body:
            continue
        value = body[field]
        if not _is_integer(value):
            raise ApiError(400, "%s: must be an integer" % field)
        if not low <= value <= high:
            raise ApiError(400, "%s: must be between %d and %d" % (field, low, high))
    return body


def metrics_for(record, now=None):
    """Utilisation that moves over time but stays consistent with the record."""
    now = time.time() if now is None else now
    seed = int(hashlib.sha256(("%s:%d" % (record["id"], int(now // 10))).encode()).hexdigest(), 16)
    base = int(hashlib.sha256(record["id"].encode()).hexdigest(), 16)
    running = record["state"] == "running"
    disk_used = (
        0.0
        if record["state"] in ("provisioning", "failed")
        else round(1.2 + (base % 1000) / 1000.0 * record["disk_gb"] * 0.4, 1)
    )
    return {
        "cpu_percent": round((seed % 6000) / 100.0, 1) if running else 0.0,
        "memory_used_mb": int(record["memory_mb"] * (0.2 + (seed % 500) / 1000.0)) if running else 0,
        "memory_total_mb": record["memory_mb"],
        "disk_used_gb": min(disk_used, float(record["disk_gb"])),
        "disk_total_gb": record["disk_gb"],
    }


def create_app(store, budget=None):
    api = FastAPI(
        title="hzel containers API (emulator)",
        version="1",
        description="A local emulator of api.hzel.org for the hzel.cloud collection's demo and tests.",
    )
    faults = Faults()
    faults.budget = budget
    load = Load()
    describe_api = api.openapi

    def openapi():
        # What the API answers, as the reference lists it: no framework-made 422, and its auth schemes.
        if api.openapi_schema is None:
            document = describe_api()
            for path, operations in document["paths"].items():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
                    if path.startswith("/api/"):
                        operation["security"] = [{"bearerAuth": []}, {"sessionCookie": []}]
            components = document.setdefault("components", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.get("schemas", {}).pop(name, None)
            components["securitySchemes"] = {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "PAT or OAuth token"},
                "sessionCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "Browser session; POSTs also need the x-csrf-token header",
                },
            }
            api.openapi_schema = document
        return api.openapi_schema

    api.openapi = openapi
    api.state.store = store
    api.state.faults = faults
    api.state.load = load

    @api.exception_handler(ApiError)
    async def api_error(_request, exc):
        return _json({"error": {"code": exc.code, "message": exc.message}}, exc.status)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc):
        code = ERROR_CODES.get(exc.status_code, "ERROR")
        message = "Not found" if exc.status_code == 404 else str(exc.detail)
        return _json({"error": {"code": code, "message": message}}, exc.status_code)

    async def owned_container(request, container_id):
        user = authenticate(store, request)
        if request.method == "POST":
            require_csrf(user, request)
        record = store.get_container(user, container_id)
        if record is None:
            raise ApiError(404, "Container not found")
        return user, record

    async def settled(user, record):
        # start/stop/restart on a provisioning container wait for provisioning to end
        # ("polls until the state is confirmed"), then act on the outcome.
        while record["state"] == "provisioning":
            await asyncio.sleep(max(0.0, record["_ready_at"] - time.time()) + 0.01)
            record = store.get_container(user, record["id"])
        if record["state"] == "failed":
            raise ApiError(400, "Container %s failed to provision and cannot change state" % record["id"])
        return record

    @api.get(
        "/api/v1/containers", tags=["containers"], responses=_documented({"type": "array", "items": RECORD_SCHEMA}, 401)
    )
    async def list_containers(request: Request):
        user = authenticate(store, request)
        return _json({"data": store.list_containers(user)})

    @api.post(
        "/api/v1/containers",
        tags=["containers"],
        responses=_documented(RECORD_SCHEMA, 400, 401, 403),
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": CREATE_SCHEMA}}}},
    )
    async def create_container(request: Request):
        user = authenticate(store, request)
        require_csrf(user, request)
        body = validate_create(request, await request.body())
        try:
            record = store.create_container(user, body)
        except HostnameTaken:
            raise ApiError(400, "hostname: %s is already in use" % body["hostname"]) from None
        return _json({"data": record})

    @api.get("/api/v1/containers/{container_id}", tags=["containers"], responses=_documented(RECORD_SCHEMA, 401, 404))
    async def get_container(container_id: str, request: Request):
        _user, record = await owned_container(request, container_id)
        return _json({"data": _public(record)})

    async def power(request, container_id, target, always=False):
        user, record = await owned_container(request, container_id)
        record = await settled(user, record)
        if always or record["state"] != target:
            record = store.set_state(user, container_id, target)
        return _json({"data": _public(record)})

    @api.post(
        "/api/v1/containers/{container_id}/start",
        tags=["containers"],
        responses=_documented(RECORD_SCHEMA, 401, 403, 404),
    )
    async def start_container(container_id: str, request: Request):
        return await power(request, container_id, "running")

    @api.post(
        "/api/v1/containers/{container_id}/stop",
        tags=["containers"],
        responses=_documented(RECORD_SCHEMA, 401, 403, 404),
    )
    async def stop_container(container_id: str, request: Request):
        return await power(request, container_id, "stopped")

    @api.post(
        "/api/v1/containers/{container_id}/restart",
        tags=["containers"],
        responses=_documented(RECORD_SCHEMA, 401, 403, 404),
    )
    async def restart_container(container_id: str, request: Request):
        return await power(request, container_id, "running", always=True)

    @api.get(
        "/api/v1/containers/{container_id}/metrics",
        tags=["containers"],
        responses=_documented(METRICS_SCHEMA, 401, 404),
    )
    async def container_metrics(container_id: str, request: Request):
        _user, record = await owned_container(request, container_id)
        return _json({"data": load.apply(record, metrics_for(record))})

    # The emulator's own control plane: not part of the hzel API, never faulted.
    @api.get("/_emulator/health", tags=["emulator"])
    async def health():
        return _json({"status": "ok"})

    def settings():
        return {"provision_seconds": store.provision_seconds, "hostname_scope": store.hostname_scope}

    @api.get("/_emulator/settings", tags=["emulator"])
    async def get_settings():
        return _json(settings())

    @api.put("/_emulator/settings", tags=["emulator"])
    async def put_settings(request: Request):
        body = await _control_body(request)
        if "provision_seconds" in body:
            value = body["provision_seconds"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ApiError(400, "provision_seconds: must be a number >= 0")
            store.provision_seconds = float(value)
        if "hostname_scope" in body:
            if body["hostname_scope"] not in store.HOSTNAME_SCOPES:
                raise ApiError(400, "hostname_scope: must be one of %s" % ", ".join(store.HOSTNAME_SCOPES))
            store.hostname_scope = body["hostname_scope"]
        return _json(settings())

    @api.get("/_emulator/rate_limit", tags=["emulator"])
    async def get_rate_limit():
        return _json(faults.rate_limit.describe())

    @api.put("/_emulator/rate_limit", tags=["emulator"])
    async def put_rate_limit(request: Request):
        body = await _control_body(request)
        try:
            faults.rate_limit.configure(**body)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "rate_limit: %s" % exc) from None
        return _json(faults.rate_limit.describe())

    @api.get("/_emulator/faults", tags=["emulator"])
    async def get_faults():
        return _json({"faults": faults.describe()})

    @api.put("/_emulator/faults", tags=["emulator"])
    async def put_faults(request: Request):
        body = await _control_body(request)
        try:
            faults.set_rules(body.get("faults", []))
        except (TypeError, ValueError, re.error) as exc:
            raise ApiError(400, "faults: %s" % exc) from None
        return _json({"faults": faults.describe()})

    @api.delete("/_emulator/faults", tags=["emulator"])
    async def delete_faults():
        faults.clear()
        return _json({"faults": []})

    def matching(rule):
        every = store.list_containers({"admin": True, "id": None})
        return sum(1 for record in every if rule.matches(record["hostname"]))

    @api.get("/_emulator/metrics", tags=["emulator"])
    async def get_metrics_rules():
        return _json({"rules": load.describe()})

    @api.post("/_emulator/metrics", tags=["emulator"])
    async def set_metrics(request: Request):
        body = await _control_body(request)
        try:
            rule = load.set_rule(body)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "metrics: %s" % exc) from None
        return _json({"rules": load.describe(), "matched": matching(rule)})

    @api.delete("/_emulator/metrics", tags=["emulator"])
    async def delete_metrics_rules():
        load.clear()
        return _json({"rules": []})

    @api.get("/_emulator/stats", tags=["emulator"])
    async def get_stats():
        return _json(faults.stats())

    @api.delete("/_emulator/stats", tags=["emulator"])
    async def delete_stats():
        faults.reset_stats()
        return _json(faults.stats())

    @api.post("/_emulator/reset", tags=["emulator"])
    async def reset():
        store.reset()
        store.hostname_scope = "platform"
        faults.clear()
        load.clear()
        faults.rate_limit.configure()
        faults.reset_stats()
        if faults.budget is not None:
            faults.budget.reset()
        return _json({"status": "reset"})

    @api.post("/_emulator/seed", tags=["emulator"])
    async def seed(request: Request):
        body = await _control_body(request)
        count = body.get("count")
        if not _is_integer(count) or count < 1:
            raise ApiError(400, "count: must be a positive integer")
        try:
            added = store.seed_containers(
                body.get("owner", "admin"), count, body.get("prefix", "seed-"), body.get("state", "running")
            )
        except KeyError:
            raise ApiError(400, "owner: no such user") from None
        return _json({"added": added})

    return FaultInjector(api, faults)


async def _control_body(request):
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ApiError(400, "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return body
