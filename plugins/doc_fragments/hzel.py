# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the hzel API, without C(/api/v1) (which is added to every request); a URL that ends with
        C(/api/v1) is refused before any request, saying to drop it.
      - Use C(http://) for a server that serves plain HTTP; an C(https://) URL of such a server fails saying that
        it does not speak TLS.
      - If not set, the value of the E(HZEL_API_URL) environment variable is used.
      - Point it at a local emulator (for example V(http://127.0.0.1:8080)) to try the collection without an account.
    type: str
    default: https://api.hzel.org
  api_token:
    description:
      - A personal access token (PAT) or OAuth bearer token of the hzel API.
      - If not set, the value of the E(HZEL_API_TOKEN) environment variable is used.
      - Browser session cookies are not supported; bearer tokens are exempt from the API's CSRF check.
      - Either this option or E(HZEL_API_TOKEN) must be set; without a token the module fails before sending any
        request.
      - A token with a line break, another control character, white space or a non-ASCII character is refused before
        any request, with a message that does not repeat it.
      - The token is never logged nor returned, in any form, at any verbosity.
    type: str
  validate_certs:
    description:
      - Whether to verify the TLS certificate of the API.
      - A certificate that cannot be verified fails the request, naming the reason (for example a self-signed
        certificate); the CA of a private server can be given in E(REQUESTS_CA_BUNDLE).
      - If not set, the value of the E(HZEL_VALIDATE_CERTS) environment variable is used.
    type: bool
    default: true
  api_timeout:
    description:
      - Seconds that one HTTP request may take in all, from connecting to the last byte of the reply; a server that
        answers slowly (even a byte at a time) is given up on at this deadline, which counts as a transient failure.
      - Greater than 0 and at most 3600. If not set, the value of the E(HZEL_API_TIMEOUT) environment variable is used.
    type: float
    default: 30
  api_retries:
    description:
      - How many times a request is tried again after a transient failure (HTTP 502, 503, 504, a lost
        connection, a timeout), with exponential backoff and jitter, honouring C(Retry-After). V(0) tries each
        request once. From 0 to 20.
      - An HTTP 429 does not spend these retries. The request waits for as long as C(Retry-After) asks (at least
        1 second, at most 60) while the other requests go on, and gives up after 120 seconds (or 100 answers 429)
        since its first 429. When 429s show a real limit, every request holds for C(Retry-After) and then goes out
        at the pace the API let through. A real limit shows as answers 429 in a row across the requests of the
        task, more of them than the share of 429s among the recent answers makes likely by chance (four when 429s
        are rare, six when one answer in five is a random 429), so that random 429s from a flaky proxy do not
        slow the whole task.
      - Where the API states its budget in its replies (the C(RateLimit-Limit), C(RateLimit-Remaining) and
        C(RateLimit-Reset) headers, or C(X-RateLimit-Limit), C(X-RateLimit-Remaining) and C(X-RateLimit-Reset)),
        the requests stop before it is spent, counting those still in flight, and wait for its reset (in seconds,
        or a UNIX time when the value is too large to be a delay) rather than meet a 429; a reset more than 120
        seconds away is not waited for. Values that are negative, not whole numbers, or out of bounds are
        ignored.
      - A create is never sent blindly a second time; after an answer that leaves its outcome open, the hostname is
        looked up first. A restart is repeated only when the first request certainly never reached the API.
      - The first failure that is retried (an API that refuses connections, for example) is told at once, as one
        warning naming the API and what failed, so that the wait is not silent; the task's failure, if the retries
        do not help, is one message.
      - If not set, the value of the E(HZEL_API_RETRIES) environment variable is used.
    type: int
    default: 5
  api_rate_limit:
    version_added: 1.1.0
    description:
      - The most requests per second that the task sends to the API, all its requests together (a module that
        works on many containers sends several at once); unset means no limit of its own.
      - A token bucket - up to one second's worth of requests (at least 1, at most 10) may leave at once, then one
        every 1/O(api_rate_limit) seconds - so that any 10 seconds hold at most 10 times the limit plus that burst.
        Retries and the reads of a wait count as requests.
      - The budget is per client process - each task on each host (with C(forks)), each inventory source and
        each event source has its own, so several of them at once send up to the sum of their limits; set the
        limits so that their sum stays within the API's.
      - An HTTP 429 still waits for its C(Retry-After), and the budget the API states in its replies still holds
        the requests (see O(api_retries)).
      - Greater than 0 and at most 10000. If not set, the value of the E(HZEL_API_RATE_LIMIT) environment variable
        is used.
    type: float
requirements:
  - requests >= 2.25.0
notes:
  - The hzel API has no update and no delete endpoint; modules never resize or remove containers.
"""

    INVENTORY = r"""
options:
  api_url:
    description:
      - Base URL of the hzel API, without C(/api/v1) (which is added to every request); a URL that ends with
        C(/api/v1) is refused before any request, saying to drop it.
    type: str
    default: https://api.hzel.org
    env:
      - name: HZEL_API_URL
  api_token:
    description:
      - A personal access token (PAT) or OAuth bearer token of the hzel API.
      - May be templated, for example V({{ lookup('ansible.builtin.env', 'MY_TOKEN'\) }}), a vaulted value, or an extra
        variable (V({{ hzel_token }}) with C(-e hzel_token=...) or C(-e @vaulted-vars.yml)).
      - Either this option or E(HZEL_API_TOKEN) must be set.
      - The token is never written to the inventory cache nor shown in output.
    type: str
    env:
      - name: HZEL_API_TOKEN
  validate_certs:
    description:
      - Whether to verify the TLS certificate of the API.
    type: bool
    default: true
    env:
      - name: HZEL_VALIDATE_CERTS
  api_timeout:
    description:
      - Seconds that one HTTP request may take in all, from connecting to the last byte of the reply; greater than 0
        and at most 3600.
    type: float
    default: 30
    env:
      - name: HZEL_API_TIMEOUT
  api_retries:
    description:
      - How many times a request is tried again after a transient failure (HTTP 502, 503, 504, a lost
        connection, a timeout), with exponential backoff and jitter, honouring C(Retry-After). V(0) tries each
        request once. From 0 to 20.
      - An HTTP 429 does not spend these retries. The request waits for as long as C(Retry-After) asks (at least
        1 second, at most 60) while the other requests go on, and gives up after 120 seconds (or 100 answers 429)
        since its first 429. When 429s show a real limit, every request holds for C(Retry-After) and then goes out
        at the pace the API let through. A real limit shows as answers 429 in a row across the requests of the
        task, more of them than the share of 429s among the recent answers makes likely by chance (four when 429s
        are rare, six when one answer in five is a random 429), so that random 429s from a flaky proxy do not
        slow the whole task.
      - Where the API states its budget in its replies (the C(RateLimit-Limit), C(RateLimit-Remaining) and
        C(RateLimit-Reset) headers, or C(X-RateLimit-Limit), C(X-RateLimit-Remaining) and C(X-RateLimit-Reset)),
        the requests stop before it is spent, counting those still in flight, and wait for its reset (in seconds,
        or a UNIX time when the value is too large to be a delay) rather than meet a 429; a reset more than 120
        seconds away is not waited for. Values that are negative, not whole numbers, or out of bounds are
        ignored.
    type: int
    default: 5
    env:
      - name: HZEL_API_RETRIES
  api_rate_limit:
    version_added: 1.1.0
    description:
      - The most requests per second that the inventory sends to the API, the list and every metrics request of
        O(include_metrics) together; unset means no limit of its own.
      - A token bucket - up to one second's worth of requests (at least 1, at most 10) may leave at once, then one
        every 1/O(api_rate_limit) seconds - so that any 10 seconds hold at most 10 times the limit plus that burst.
      - The budget is per inventory source and per run; several sources or runs at once (AWX syncs, job slices)
        send up to the sum of their limits.
      - An HTTP 429 still waits for its C(Retry-After), and the budget the API states in its replies still holds
        the requests (see O(api_retries)).
      - Greater than 0 and at most 10000.
    type: float
    env:
      - name: HZEL_API_RATE_LIMIT
requirements:
  - requests >= 2.25.0
"""
