# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the HTTP-level tests of the module_utils."""

from __future__ import annotations

import pytest
import responses


@pytest.fixture
def api():
    """Every HTTP request of the test goes to this mock; none reaches a network."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
