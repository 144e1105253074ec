# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import concurrent.futures
import http.server
import json
import os
import re
import threading
import time

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ansible_collections.hzel.cloud.plugins.module_utils._containers import ContainersAPI
from ansible_collections.hzel.cloud.plugins.module_utils._options import build_client
from ansible_collections.hzel.cloud.plugins.module_utils._rate import RATE_LIMIT_PATIENCE, RETRY_AFTER_FLOOR
from ansible_collections.hzel.cloud.plugins.module_utils._transport import (
    USER_AGENT,
    HzelAuthError,
    HzelBadRequest,
    HzelError,
    HzelNotFound,
    HzelTransport,
    HzelUnavailable,
    HzelUnexpectedReply,
    RateGate,
)
from ansible_collections.hzel.cloud.tests.unit.plugins.module_utils.fake_api import API, LIST, RECORD, FakeTime

TOKEN = "s3cret-token-value"
ONE = LIST + "/" + RECORD["id"]


def error_body(code, message):
    return {"error": {"code": code, "message": message}}


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def sleeps(fake_time):
    return fake_time.sleeps


def HzelClient(api_url, token, sleep=None, clock=None, **options):
    """The containers API over a transport, as build_client makes it."""
    return ContainersAPI(
        HzelTransport(api_url, token, sleep=sleep or (lambda s: None), clock=clock or (lambda: 0.0), **options)
    )


@pytest.fixture
def client(fake_time):
    return HzelClient(API, TOKEN, retries=3, sleep=fake_time.sleep, clock=fake_time.clock)


def refused():
    return requests.exceptions.ConnectionError(
        MaxRetryError(None, LIST, NewConnectionError(None, "[Errno 111] Connection refused"))
    )


def sent(api, method):
    return [call for call in api.calls if call.request.method == method]


def test_requests_carry_the_bearer_token_and_the_collection_user_agent(api, client):
    api.get(LIST, json={"data": [RECORD]})
    assert client.list() == [RECORD]
    headers = api.calls[0].request.headers
    assert headers["Authorization"] == "Bearer " + TOKEN
    assert headers["User-Agent"] == USER_AGENT


def test_a_missing_token_fails_before_any_request_naming_both_ways_to_give_one(api):
    with pytest.raises(HzelAuthError) as failure:
        HzelClient(API, None)
    assert "api_token" in failure.value.message and "HZEL_API_TOKEN" in failure.value.message
    assert not api.calls


def test_a_refused_token_says_authentication_failed_and_never_echoes_the_token(api, client):
    api.get(LIST, status=401, json=error_body("UNAUTHORIZED", "Missing or invalid auth"))
    with pytest.raises(HzelAuthError) as failure:
        client.list()
    assert "Authentication with the hzel API failed" in failure.value.message
    assert "api_token" in failure.value.message and failure.value.code == "UNAUTHORIZED"
    assert TOKEN not in str(failure.value)


def test_not_found_is_its_own_error(api, client):
    api.get(ONE, status=404, json=error_body("NOT_FOUND", "Container not found or not owned by user"))
    with pytest.raises(HzelNotFound) as failure:
        client.get(RECORD["id"])
    assert failure.value.status == 404


def test_a_bad_request_carries_the_api_message(api, client):
    api.post(LIST, status=400, json=error_body("BAD_REQUEST", "disk_gb: must be between 18 and 32"))
    api.get(LIST, json={"data": []})
    with pytest.raises(HzelBadRequest) as failure:
        client.create({"hostname": "web-1", "disk_gb": 40})
    assert "disk_gb: must be between 18 and 32" in failure.value.message


def test_csrf_rejection_explains_that_a_token_is_needed(api, client):
    api.post(ONE + "/stop", status=403, json=error_body("CSRF_REJECTED", "Session auth missing x-csrf-token"))
    with pytest.raises(HzelAuthError) as failure:
        client.stop(RECORD["id"])
    assert "CSRF" in failure.value.message and "personal access token" in failure.value.message


def test_an_html_page_from_a_proxy_is_retried_then_reported_with_an_excerpt(api, client, sleeps):
    page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>nginx</body></html>"
    api.get(LIST, status=502, body=page, content_type="text/html")
    with pytest.raises(HzelUnavailable) as failure:
        client.list()
    message = failure.value.message
    assert "HTTP 502" in message and "not JSON" in message and "502 Bad Gateway" in message
    assert "<html>" not in message and "after 4 attempts" in message
    assert len(api.calls) == 4 and len(sleeps) == 3


def test_an_html_page_with_status_200_is_not_mistaken_for_data(api, client):
    api.get(LIST, status=200, body="<html>login</html>", content_type="text/html")
    with pytest.raises(HzelError) as failure:
        client.list()
    assert "not JSON" in failure.value.message and len(api.calls) == 1


def test_429_waits_as_long_as_retry_after_says(api, client, sleeps):
    api.get(LIST, status=429, json=error_body("RATE_LIMITED", "slow down"), headers={"Retry-After": "2"})
    api.get(LIST, json={"data": []})
    assert client.list() == []
    assert sleeps == [2.0]


def test_backoff_grows_with_jitter_below_the_cap(api, fake_time, sleeps):
    client = HzelClient(
        API, TOKEN, retries=5, backoff=1.0, backoff_max=4.0, sleep=fake_time.sleep, clock=fake_time.clock
    )
    api.get(LIST, status=503, json=error_body("SERVICE_UNAVAILABLE", "down"))
    with pytest.raises(HzelUnavailable):
        client.list()
    bounds = [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (2.0, 4.0), (2.0, 4.0)]
    assert len(sleeps) == len(bounds)
    assert all(low <= delay <= high for delay, (low, high) in zip(sleeps, bounds))


def test_an_unreachable_api_is_one_clear_error(api, client):
    api.get(LIST, body=refused())
    with pytest.raises(HzelUnavailable) as failure:
        client.list()
    assert "could not be reached" in failure.value.message and "Connection refused" in failure.value.message
    assert API in failure.value.message


def test_a_timeout_is_retried_for_reads(api, client):
    api.get(LIST, body=requests.exceptions.ReadTimeout("read timed out"))
    api.get(LIST, json={"data": [RECORD]})
    assert client.list() == [RECORD]


def test_a_create_whose_reply_was_lost_is_found_by_hostname_not_sent_again(api, client):
    api.post(LIST, body=requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected"))
    api.get(LIST, json={"data": [RECORD]})
    assert client.create({"hostname": "web-1"}) == RECORD
    assert len(sent(api, "POST")) == 1


def test_a_create_whose_every_reply_was_lost_still_returns_the_committed_container(api, fake_time, sleeps):
    client = HzelClient(API, TOKEN, retries=1, sleep=fake_time.sleep, clock=fake_time.clock)
    api.post(LIST, body=requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected"))
    api.get(LIST, json={"data": []})
    api.get(LIST, json={"data": [RECORD]})
    assert client.create({"hostname": "web-1"}) == RECORD
    assert [call.request.method for call in api.calls] == ["POST", "GET", "POST", "GET"]


def test_an_unreachable_api_is_not_waited_for_after_the_last_attempt(api, fake_time, sleeps):
    client = HzelClient(API, TOKEN, retries=2, sleep=fake_time.sleep, clock=fake_time.clock)
    api.get(LIST, body=refused())
    with pytest.raises(HzelUnavailable):
        client.list()
    assert len(api.calls) == 3 and len(sleeps) == 2


def test_a_create_answered_502_is_sent_again_only_after_the_lookup_finds_nothing(api, client):
    api.post(LIST, status=502, json=error_body("BAD_GATEWAY", "upstream"))
    api.post(LIST, json={"data": RECORD})
    api.get(LIST, json={"data": []})
    assert client.create({"hostname": "web-1"}) == RECORD
    assert [call.request.method for call in api.calls] == ["POST", "GET", "POST"]


def test_a_create_answered_500_returns_the_container_if_it_was_committed(api, client):
    api.post(LIST, status=500, json=error_body("INTERNAL_ERROR", "oops"))
    api.get(LIST, json={"data": [RECORD]})
    assert client.create({"hostname": "web-1"}) == RECORD
    assert len(sent(api, "POST")) == 1


def test_a_create_refused_with_429_is_sent_again_without_a_lookup(api, client):  # 429: nothing was done
    api.post(LIST, status=429, json=error_body("RATE_LIMITED", "slow down"), headers={"Retry-After": "0"})
    api.post(LIST, json={"data": RECORD})
    assert client.create({"hostname": "web-1"}) == RECORD
    assert [call.request.method for call in api.calls] == ["POST", "POST"]
    assert json.loads(api.calls[1].request.body) == {"hostname": "web-1"}


def test_start_is_repeated_after_a_503_because_a_repeat_does_no_harm(api, client):
    api.post(ONE + "/start", status=503, json=error_body("SERVICE_UNAVAILABLE", "busy"))
    api.post(ONE + "/start", json={"data": RECORD})
    assert client.start(RECORD["id"]) == RECORD


def test_restart_is_not_repeated_when_it_may_have_reached_the_api(api, client):
    api.post(ONE + "/restart", status=503, json=error_body("SERVICE_UNAVAILABLE", "busy"))
    with pytest.raises(HzelUnavailable) as failure:
        client.restart(RECORD["id"])
    assert len(api.calls) == 1 and "after 1 attempt" in failure.value.message


def test_restart_is_repeated_when_the_connection_was_refused(api, client):
    api.post(ONE + "/restart", body=refused())
    api.post(ONE + "/restart", json={"data": RECORD})
    assert client.restart(RECORD["id"]) == RECORD


def test_a_reply_without_the_data_envelope_is_an_error(api, client):
    api.get(LIST, json={"containers": []})
    with pytest.raises(HzelError) as failure:
        client.list()
    assert "envelope" in failure.value.message


@pytest.mark.parametrize(
    "token, says",
    [
        ("abc-token\n", "line break"),
        ("abc\r\ntoken", "line break"),
        ("abc\ttoken", "control character"),
        ("abc token", "white space"),
        ("abcé-token", "not printable ASCII"),
        ("", "No hzel API token"),
    ],
)
def test_a_token_that_cannot_be_a_header_is_refused_before_any_request_without_echoing_it(api, token, says):
    with pytest.raises(HzelAuthError) as failure:
        HzelClient(API, token)
    assert says in failure.value.message and not api.calls
    if token.strip():
        assert token.strip()[:3] + "-" not in failure.value.message and "abc" not in failure.value.message


@pytest.mark.parametrize("form", [TOKEN, json.dumps(TOKEN)[1:-1], "Bearer " + TOKEN])
@pytest.mark.parametrize("status, content_type", [(400, "json"), (500, "json"), (500, "html"), (200, "html")])
def test_an_api_that_echoes_the_token_never_gets_it_into_a_message(api, status, content_type, form):
    client = HzelClient(API, TOKEN, retries=0)
    if content_type == "json":
        api.get(LIST, status=status, json=error_body("BAD", "your request: Authorization: " + form))
    else:
        api.get(LIST, status=status, body="<pre>Authorization: %s</pre>" % form, content_type="text/html")
    with pytest.raises(HzelError) as failure:
        client.list()
    assert TOKEN not in failure.value.message and TOKEN[:6] not in failure.value.message
    assert "********" in failure.value.message


SPECIAL_TOKEN = "hzelQ2/x+Yz9&kLm0<=>"


@pytest.mark.parametrize(
    "form",
    [
        json.dumps(SPECIAL_TOKEN)[1:-1].replace("/", "\\/"),
        "hzelQ2/x+Yz9&amp;kLm0&lt;=&gt;",
        "hzelQ2%2Fx%2BYz9%26kLm0%3C%3D%3E",
        "hzelQ2%2fx%2bYz9%26kLm0%3c%3d%3e",
        "hzelQ2/x%2BYz9%26kLm0%3C%3D%3E",
    ],
)
def test_a_token_echoed_escaped_for_json_html_or_a_url_is_scrubbed(api, form):
    client = HzelClient(API, SPECIAL_TOKEN, retries=0)
    api.get(LIST, status=502, body="<pre>Authorization: Bearer %s</pre>" % form, content_type="text/html")
    with pytest.raises(HzelError) as failure:
        client.list()
    assert "kLm0" not in failure.value.message and "hzelQ2" not in failure.value.message
    assert "********" in failure.value.message


def test_a_token_cut_by_the_length_bound_leaves_no_prefix_behind(api):
    client = HzelClient(API, TOKEN, retries=0)
    # Placed so that the excerpt's cut would fall in the middle of the token.
    api.get(LIST, status=400, json=error_body("BAD", "x" * 290 + TOKEN + "y" * 100))
    with pytest.raises(HzelError) as failure:
        client.list()
    assert TOKEN[:5] not in failure.value.message


def test_a_ten_megabyte_error_message_becomes_a_bounded_message(api, client):
    api.get(LIST, status=400, json=error_body("BAD_REQUEST", "z" * 10_000_000))
    with pytest.raises(HzelBadRequest) as failure:
        client.list()
    assert len(failure.value.message) <= 2000 and failure.value.message.endswith("...")


def test_a_429_does_not_spend_retries_and_waits_as_often_as_asked(api, fake_time):
    client = HzelClient(API, TOKEN, retries=0, sleep=fake_time.sleep, clock=fake_time.clock)
    for retry_after in ["3"] * 4:
        api.get(LIST, status=429, json=error_body("RATE_LIMITED", "slow down"), headers={"Retry-After": retry_after})
    api.get(LIST, json={"data": []})
    assert client.list() == []
    assert fake_time.sleeps == [3.0] * 4


def test_a_rate_limit_that_never_lifts_fails_after_the_documented_patience(api, fake_time):
    client = HzelClient(API, TOKEN, retries=5, sleep=fake_time.sleep, clock=fake_time.clock)
    api.get(LIST, status=429, json=error_body("RATE_LIMITED", "slow down"), headers={"Retry-After": "50"})
    with pytest.raises(HzelUnavailable) as failure:
        client.list()
    assert "rate limit" in failure.value.message and sum(fake_time.sleeps) <= 120
    assert len(api.calls) == 3


def test_the_rate_gate_holds_every_request_until_the_latest_retry_after():
    waits = FakeTime()
    gate = RateGate(waits.sleep, waits.clock)
    gate.hold(2.0)
    gate.hold(1.0)
    assert gate.wait() == 2.0 and gate.wait() == 0.0


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    sent = []

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        body = b'{"data": []}' + b" " * 200
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for index in range(len(body)):
            try:
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
            except OSError:
                return
            self.sent.append(index)
            time.sleep(0.02)

    def log_message(self, *args):
        pass


def test_api_timeout_is_a_deadline_for_the_whole_request_not_per_byte():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = HzelClient("http://127.0.0.1:%d" % server.server_address[1], TOKEN, timeout=0.5, retries=0)
        with pytest.raises(HzelUnavailable) as failure:
            client.list()
        assert "no complete reply within 0.5s" in failure.value.message
        # Each byte came well within 0.5 s, so only a deadline on the whole request ends it this early.
        assert len(_TrickleHandler.sent) < 200
    finally:
        server.shutdown()


class _TricklingProxy(http.server.BaseHTTPRequestHandler):
    """An HTTP proxy that accepts a CONNECT and then trickles the header lines of its answer."""

    lines_sent = []

    def do_CONNECT(self):
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n")
        for index in range(60):
            try:
                for byte in b"X-Slow-%02d: y\r\n" % index:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.005)
            except OSError:
                return
            self.lines_sent.append(index)

    def log_message(self, *args):
        pass


def test_the_deadline_also_bounds_the_connect_exchange_with_an_https_proxy(monkeypatch):
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TricklingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:%d" % proxy.server_address[1])
    try:
        client = HzelClient("https://hzel.invalid", TOKEN, timeout=0.5, retries=0, validate_certs=False)
        with pytest.raises(HzelError):
            client.list()
        # Every byte came within 5 ms, and the whole answer takes over 4 s: only a deadline on the whole
        # exchange ends it before the proxy has sent every line.
        assert len(_TricklingProxy.lines_sent) < 60
    finally:
        proxy.shutdown()


@pytest.mark.parametrize(
    "options, named",
    [
        (dict(timeout=0), "api_timeout"),
        (dict(timeout=-1.5), "api_timeout"),
        (dict(timeout=float("nan")), "api_timeout"),
        (dict(timeout=float("inf")), "api_timeout"),
        (dict(timeout=1e308), "api_timeout"),
        (dict(retries=-1), "api_retries"),
        (dict(retries=1000), "api_retries"),
        (dict(validate_certs="no"), "validate_certs"),
    ],
)
def test_transport_options_out_of_range_are_refused_before_any_request(api, options, named):
    with pytest.raises(HzelError) as failure:
        build_client(
            dict(
                dict(api_url=API, api_token=TOKEN),
                **{
                    {"timeout": "api_timeout", "retries": "api_retries"}.get(key, key): value
                    for key, value in options.items()
                },
            )
        )
    assert named in failure.value.message and not api.calls


@pytest.mark.parametrize(
    "url", ["api.hzel.org", "ftp://api.hzel.org", "http://api.hzel.org/ x", "http://u:p@host", "http://host?x=1"]
)
def test_an_invalid_api_url_is_refused(url):
    with pytest.raises(HzelError) as failure:
        HzelClient(url, TOKEN)
    assert "api_url" in failure.value.message


def test_the_user_agent_carries_the_version_of_galaxy_yml():
    galaxy = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "galaxy.yml")
    with open(galaxy, encoding="utf-8") as handle:
        version = re.search(r"^version: *(\S+)", handle.read(), re.MULTILINE).group(1)
    assert USER_AGENT == "ansible-hzel.cloud/%s" % version


# The 429 rule -----------------------------------------------------------------------------------


def always_429(api, retry_after, clock_step=0.0, fake_time=None, most=500):
    """Every GET of the list answers 429; a test that loops past ``most`` requests fails instead of hanging."""
    calls = []

    def answer(request):
        calls.append(fake_time.now if fake_time is not None else None)
        if len(calls) > most:
            raise AssertionError("%d requests for one rate-limited read" % len(calls))
        if fake_time is not None:
            fake_time.now += clock_step
        return 429, {"Retry-After": retry_after}, json.dumps(error_body("RATE_LIMITED", "slow down"))

    api.add_callback("GET", LIST, callback=answer, content_type="application/json")
    return calls


@pytest.mark.parametrize("retry_after", ["0", "0.001", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_429_that_says_retry_at_once_still_pauses_and_the_patience_ends(api, fake_time, retry_after):
    client = HzelClient(API, TOKEN, sleep=fake_time.sleep, clock=fake_time.clock)
    sent_at = always_429(api, retry_after, fake_time=fake_time)
    with pytest.raises(HzelUnavailable) as failure:
        client.list()
    assert "rate limit" in failure.value.message
    assert min(later - earlier for earlier, later in zip(sent_at, sent_at[1:])) >= RETRY_AFTER_FLOOR
    assert len(sent_at) <= RATE_LIMIT_PATIENCE / RETRY_AFTER_FLOOR + 1


def test_the_rate_limit_patience_counts_wall_time_not_only_the_time_slept(api, fake_time):
    client = HzelClient(API, TOKEN, sleep=fake_time.sleep, clock=fake_time.clock)
    # Each 429 takes 10 s to arrive (a slow proxy) and asks for 1 s.
    calls = always_429(api, "1", clock_step=10.0, fake_time=fake_time)
    with pytest.raises(HzelUnavailable):
        client.list()
    assert fake_time.now <= RATE_LIMIT_PATIENCE + 20 and len(calls) <= 12


def test_a_random_429_makes_only_its_own_request_wait(api, fake_time):
    client = HzelClient(API, TOKEN, sleep=fake_time.sleep, clock=fake_time.clock)
    api.get(LIST, json={"data": []})
    for _round in range(10):
        client.list()
    api.replace("GET", LIST, status=429, json=error_body("RATE_LIMITED", "slow down"), headers={"Retry-After": "5"})
    api.add("GET", LIST, json={"data": []})
    client.list()
    assert fake_time.sleeps == [5.0]
    assert client.transport.rate.holds == 0 and client.transport.gate.wait() == 0.0


# The exchange -------------------------------------------------------------------------------------


def _client_sockets(port):
    """Open sockets of this process connected to ``port`` on 127.0.0.1 (Linux /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    connected = 0
    with open("/proc/self/net/tcp", encoding="ascii") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[9] in inodes:
                connected += 1
    return connected


def _client_threads():
    return [
        thread
        for thread in threading.enumerate()
        if "process_request" not in thread.name and thread.name != "test-server"
    ]


@pytest.fixture
def trickle_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="test-server", daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not os.path.exists("/proc/self/net/tcp"), reason="counts sockets through Linux /proc")
def test_a_request_given_up_at_the_deadline_leaves_no_thread_and_no_open_connection(trickle_server):
    port = trickle_server.server_address[1]
    threads_before = len(_client_threads())
    client = HzelClient("http://127.0.0.1:%d" % port, TOKEN, timeout=0.2, retries=0)
    for _round in range(5):
        with pytest.raises(HzelUnavailable) as failure:
            client.list()
        assert "no complete reply within 0.2s" in failure.value.message
    assert len(_client_threads()) == threads_before
    assert _client_sockets(port) == 0


def test_a_reply_nested_too_deeply_for_the_parser_is_one_error_naming_the_endpoint(api, client):
    api.get(LIST, body="[" * 200_000 + "]" * 200_000, content_type="application/json")
    with pytest.raises(HzelUnexpectedReply) as failure:
        client.list()
    assert "GET %s" % LIST in failure.value.message and "nested too deeply" in failure.value.message


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_a_reply_with_a_number_json_does_not_have_is_refused(api, client, number):
    api.get(LIST + "/" + RECORD["id"], body='{"data": {"cpu_percent": %s}}' % number, content_type="application/json")
    with pytest.raises(HzelUnexpectedReply) as failure:
        client.get(RECORD["id"])
    assert "not finite" in failure.value.message


class _AnnouncesHugeReply(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(200 * 1024 * 1024))
        self.end_headers()
        try:
            self.wfile.write(b'{"data": [')
            self.wfile.flush()
            time.sleep(1.0)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_a_reply_announced_larger_than_the_endpoint_sends_is_refused_before_it_is_read():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AnnouncesHugeReply)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = HzelClient("http://127.0.0.1:%d" % server.server_address[1], TOKEN, timeout=0.5, retries=0)
        with pytest.raises(HzelUnexpectedReply) as failure:
            client.list()
        # Refused on the announced length, not after waiting for a body that never comes.
        assert "larger than 16 MiB" in failure.value.message
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_is_reported_with_where_it_points_and_not_followed(api, client):
    api.get(LIST, status=301, headers={"Location": "https://elsewhere.test/api/v1/containers"})
    with pytest.raises(HzelError) as failure:
        client.list()
    assert "redirect" in failure.value.message and "elsewhere.test" in failure.value.message
    assert len(api.calls) == 1


class _RecordsAuthorization(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):
        self.seen.append(self.headers.get("Authorization"))
        body = b'{"data": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_netrc_entry_for_the_api_host_never_replaces_the_token(tmp_path, monkeypatch):
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login someone password netrc-password\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RecordsAuthorization)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = HzelClient("http://127.0.0.1:%d" % server.server_address[1], TOKEN)
        assert client.list() == []
    finally:
        server.shutdown()
        server.server_close()
    assert _RecordsAuthorization.seen == ["Bearer " + TOKEN]


# api_url mistakes: each is one message that says what to change.


@pytest.mark.parametrize("given", [API + "/api/v1", API + "/api/v1/", API + "/API/V1"])
def test_an_api_url_ending_with_api_v1_is_refused_before_any_request_saying_to_drop_it(api, given):
    with pytest.raises(HzelError) as failure:
        HzelClient(given, TOKEN)
    message = failure.value.message
    assert "drop /api/v1" in message and repr(API) in message
    assert "/api/v1/api/v1" not in message and "Not found" not in message
    assert not api.calls


def test_an_api_url_with_api_v1_elsewhere_in_its_path_is_kept():
    assert HzelClient(API + "/api/v1/hzel", TOKEN).transport.api_url == API + "/api/v1/hzel"


class _PlainHTTP(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"data": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("validate_certs", [True, False])
def test_https_to_a_plain_http_server_says_that_it_does_not_speak_tls(validate_certs):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PlainHTTP)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = "127.0.0.1:%d" % server.server_address[1]
    try:
        client = HzelClient("https://" + address, TOKEN, retries=0, validate_certs=validate_certs)
        with pytest.raises(HzelError) as failure:
            client.list()
    finally:
        server.shutdown()
        server.server_close()
    message = failure.value.message
    assert message == (
        "The server at https://%s does not speak TLS (it answered the TLS handshake as a plain HTTP server would); "
        "if it serves plain HTTP, use api_url http://%s" % (address, address)
    )


SECURE = "https://hzel.test"


@pytest.mark.parametrize(
    "reason, says",
    [
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)",
            "The TLS certificate of %s could not be verified (self-signed certificate): give its CA in "
            "REQUESTS_CA_BUNDLE, or set validate_certs to false only for a server you trust" % SECURE,
        ),
        (
            "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version (_ssl.c:1006)",
            "The TLS handshake with %s failed: tlsv1 alert protocol version" % SECURE,
        ),
    ],
)
def test_a_tls_failure_is_told_in_words_without_the_http_library_class_names(api, reason, says):
    api.get(
        SECURE + "/api/v1/containers",
        body=requests.exceptions.SSLError(
            "_DeadlineHTTPSPool(host='hzel.test', port=443): Max retries exceeded with url: /api/v1/containers "
            "(Caused by SSLError(SSLError(1, '%s')))" % reason
        ),
    )
    with pytest.raises(HzelError) as failure:
        HzelClient(SECURE, TOKEN, retries=0).list()
    assert failure.value.message == says


# Retries: what is being retried is told once, at the first failure, and the final message stays one line.


def test_the_first_retry_is_told_once_with_what_is_being_retried(api, fake_time):
    api.get(LIST, body=refused())
    api.get(ONE, body=refused())
    told = []
    client = HzelClient(API, TOKEN, retries=3, sleep=fake_time.sleep, clock=fake_time.clock, notify=told.append)
    with pytest.raises(HzelUnavailable) as failure:
        client.list()
    assert told == [
        "The hzel API at %s could not be reached (GET %s: Connection refused); retrying with backoff, up to 3 times "
        "per request (api_retries), before the task fails" % (API, LIST)
    ]
    assert len(api.calls) == 4 and "\n" not in failure.value.message
    assert failure.value.message.endswith("Connection refused after 4 attempts")
    # Another request of the same transport retries again, and is not told again.
    with pytest.raises(HzelUnavailable):
        client.get(RECORD["id"])
    assert len(told) == 1 and len(api.calls) == 8


def test_a_request_that_is_not_retried_tells_nothing(api, fake_time):
    api.get(LIST, body=refused())
    told = []
    client = HzelClient(API, TOKEN, retries=0, sleep=fake_time.sleep, clock=fake_time.clock, notify=told.append)
    with pytest.raises(HzelUnavailable):
        client.list()
    assert told == []


def test_a_transient_status_that_is_retried_is_told_with_the_status(api, fake_time):
    api.get(LIST, status=503, json=error_body("UNAVAILABLE", "down for maintenance"))
    api.get(LIST, json={"data": []})
    told = []
    client = HzelClient(API, TOKEN, retries=2, sleep=fake_time.sleep, clock=fake_time.clock, notify=told.append)
    assert client.list() == []
    assert len(told) == 1 and "answered HTTP 503 UNAVAILABLE: down for maintenance (GET %s)" % LIST in told[0]


# api_rate_limit ---------------------------------------------------------------------------------------------


def test_every_request_of_the_client_draws_from_api_rate_limit_retries_included(api, fake_time):
    client = HzelClient(API, TOKEN, retries=3, sleep=fake_time.sleep, clock=fake_time.clock, rate_limit=4.0)
    api.get(LIST, status=503, json=error_body("UNAVAILABLE", "try again"))
    api.get(LIST, json={"data": []})
    started = fake_time.now
    for _round in range(20):
        client.list()
    # 21 requests (one retried): 4 at once, then one every 0.25 s; the retry's own backoff comes on top.
    assert len(api.calls) == 21
    assert fake_time.now - started >= (21 - 4) * 0.25


def test_build_client_passes_api_rate_limit_to_the_transport(api):
    assert build_client(dict(api_url=API, api_token=TOKEN, api_rate_limit=2.5)).transport.gate.rate_limit == 2.5
    assert build_client(dict(api_url=API, api_token=TOKEN)).transport.gate.rate_limit is None
    assert build_client(dict(api_url=API, api_token=TOKEN, api_rate_limit=None)).transport.gate.rate_limit is None


@pytest.mark.parametrize("value", [0, 0.0, -5, float("nan"), float("inf"), 1e6, "fast", True, [10]])
def test_an_api_rate_limit_out_of_bounds_is_refused_before_any_request(api, value):
    with pytest.raises(HzelError) as failure:
        build_client(dict(api_url=API, api_token=TOKEN, api_rate_limit=value))
    assert "api_rate_limit" in failure.value.message and "requests per second" in failure.value.message
    assert not api.calls


def test_a_429_under_api_rate_limit_still_waits_its_retry_after(api, fake_time):
    client = HzelClient(API, TOKEN, sleep=fake_time.sleep, clock=fake_time.clock, rate_limit=100.0)
    api.get(LIST, status=429, json=error_body("RATE_LIMITED", "slow down"), headers={"Retry-After": "3"})
    api.get(LIST, json={"data": []})
    assert client.list() == []
    assert 3.0 in fake_time.sleeps and fake_time.now >= 3.0


def test_the_modules_take_api_rate_limit_from_the_option_or_hzel_api_rate_limit():
    from ansible_collections.hzel.cloud.plugins.module_utils._module import hzel_argument_spec

    spec = hzel_argument_spec()["api_rate_limit"]
    assert spec["type"] == "float" and "default" not in spec
    assert spec["fallback"][1] == ["HZEL_API_RATE_LIMIT"]


# The API's budget headers --------------------------------------------------------------------------------------


class SharedFakeTime:
    """A clock shared by threads that moves only when one of them sleeps."""

    def __init__(self):
        self.now = 0.0
        self._lock = threading.Lock()

    def sleep(self, seconds):
        with self._lock:
            self.now += seconds

    def clock(self):
        with self._lock:
            return self.now


@pytest.mark.parametrize("form", ["RateLimit-%s", "X-RateLimit-%s"])
def test_a_pool_spends_the_budget_the_api_states_without_any_429(api, form):
    fake = SharedFakeTime()
    budget, window = 20, 2.0
    counted = {"window": 0, "used": 0, "answers": 0, "refused": 0}
    lock = threading.Lock()

    def answer(request):
        with lock:
            current = int(fake.now // window)
            if current != counted["window"]:
                counted["window"], counted["used"] = current, 0
            refused = counted["used"] >= budget
            counted["used"] += not refused
            counted["refused"] += refused
            counted["answers"] += 1
            remaining = budget - counted["used"]
            reset = (current + 1) * window - fake.now
        headers = {form % "Limit": str(budget), form % "Remaining": str(remaining), form % "Reset": "%.3f" % reset}
        if refused:
            headers["Retry-After"] = "1"
            return 429, headers, json.dumps(error_body("RATE_LIMITED", "slow down"))
        return 200, headers, json.dumps({"data": []})

    api.add_callback("GET", LIST, callback=answer, content_type="application/json")
    client = HzelClient(API, TOKEN, sleep=fake.sleep, clock=fake.clock, pool_size=8)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(lambda _number: client.list(), range(120))) == [[]] * 120
    assert counted["refused"] == 0 and counted["answers"] == 120
    assert client.transport.gate.budget_waits > 0 and client.transport.gate.in_flight == 0


class _RecordsRequestLines(http.server.BaseHTTPRequestHandler):
    """Answers every GET with an empty list and keeps its request line (as an origin server or an HTTP proxy)."""

    protocol_version = "HTTP/1.1"
    lines: list = []

    def do_GET(self):
        type(self).lines.append(self.requestline)
        body = json.dumps({"data": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def line_server():
    handler = type("Handler", (_RecordsRequestLines,), {"lines": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, handler.lines
    server.shutdown()
    server.server_close()


def _no_proxy_variables(monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_every_request_of_a_transport_names_its_own_path_and_query_also_after_the_pool_is_closed(
    line_server, monkeypatch
):
    _no_proxy_variables(monkeypatch)
    server, lines = line_server
    transport = HzelTransport("http://127.0.0.1:%d" % server.server_address[1], TOKEN, retries=0)
    paths = ["/containers", "/containers?state=running", "/containers/%s/metrics" % RECORD["id"], "/containers"]
    for path in paths[:2]:
        assert transport.request("GET", path) == []
    # The pool the adapter remembered is closed: the next request takes a new one and still goes out.
    transport.close()
    for path in paths[2:]:
        assert transport.request("GET", path) == []
    assert lines == ["GET /api/v1%s HTTP/1.1" % path for path in paths]


def test_through_an_http_proxy_every_request_line_is_the_whole_url(line_server, monkeypatch):
    _no_proxy_variables(monkeypatch)
    proxy, lines = line_server
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:%d" % proxy.server_address[1])
    # Nothing listens at the API's address: every request reaches the proxy only.
    transport = HzelTransport("http://api.hzel.invalid:8080", TOKEN, retries=0)
    for _number in range(3):
        assert transport.request("GET", "/containers?state=running") == []
    assert lines == ["GET http://api.hzel.invalid:8080/api/v1/containers?state=running HTTP/1.1"] * 3
