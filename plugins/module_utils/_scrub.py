# Secret scrubbing of the hzel API client: takes the token out of any text before it is cut to length.
# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This module_utils is PRIVATE to the hzel.cloud collection: it may change at
# any time, without notice, and is not for use by other collections.

"""Scrubbing and bounding of text that ends up in a message.

Text that came from the API (a message, a page, a record field) is cut only
through :meth:`Scrubber.excerpt` or :meth:`Scrubber.__call__`, which take the
secret out first: a cut can then never leave a prefix of the token behind.
The bare :func:`excerpt` is for text that holds no secret (an option value the
user gave, an exception of the HTTP library).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, List
from urllib.parse import quote

try:  # ansible-core 2.22 and later mask every registered secret in whatever they print
    from ansible.module_utils.secrets import register_secret
except ImportError:  # an older core, or none at all (the event source under ansible-rulebook)
    register_secret = None

# What a message may carry of text from outside (an API message, a page excerpt),
# and what a whole message may be, so that a 10 MB reply cannot become a 10 MB msg.
EXCERPT_LIMIT = 300
MESSAGE_LIMIT = 2000
SCRUBBED = "********"


def bound(text: Any, limit: int = MESSAGE_LIMIT) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def excerpt(text: Any, limit: int = EXCERPT_LIMIT) -> str:
    """A short one-line account of text that holds no secret: tags and control characters gone, length bounded."""
    text = re.sub(r"<[^>]*>", " ", str(text or "")[: limit * 20])
    text = re.sub(r"[\x00-\x20\x7f]+", " ", text).strip()
    return bound(text, limit)


def secret_forms(secret: str) -> List[str]:
    """Every form in which a secret could show up in a message: raw, escaped, quoted, JSON, HTML."""
    in_json = json.dumps(secret)[1:-1]
    percent = quote(secret, safe="")
    forms = {
        secret,
        repr(secret)[1:-1],
        in_json,
        # JSON encoders that escape '/' (PHP's json_encode), and pages that escape HTML.
        in_json.replace("/", "\\/"),
        html.escape(secret),
        html.escape(secret, quote=False),
        secret.encode("unicode_escape").decode("ascii", "replace"),
        percent,
        re.sub(r"%[0-9A-F]{2}", lambda match: match.group(0).lower(), percent),
        quote(secret),
    }
    # Longest first, so that a form containing another is replaced whole.
    return sorted((form for form in forms if len(form) >= 4), key=len, reverse=True)


class Scrubber:
    """Takes a secret out of text in every form it could take, before the text is cut to length.

    The one scrubbing point: the transport, the endpoint layer, the module layer, the
    inventory plugin and the event source each hold one for the token they were given (a
    missing or non-string token scrubs nothing). Where ansible-core has secret masking
    (2.22 and later), the token is also registered with it, so that core masks it in
    anything it prints, messages this collection never sees included.
    """

    def __init__(self, secret: Any) -> None:
        self.forms = secret_forms(secret) if isinstance(secret, str) and secret else []
        if self.forms and register_secret is not None:
            register_secret(secret)

    def _remove(self, text: Any) -> str:
        text = str(text)
        for form in self.forms:
            if form in text:
                text = text.replace(form, SCRUBBED)
        return text

    def __call__(self, text: Any, limit: int = MESSAGE_LIMIT) -> str:
        return bound(self._remove(text), limit)

    def excerpt(self, text: Any, limit: int = EXCERPT_LIMIT) -> str:
        """A one-line excerpt of outside text; scrubbed first, so a cut cannot leave a prefix of the secret."""
        return excerpt(self._remove(text or ""), limit)
