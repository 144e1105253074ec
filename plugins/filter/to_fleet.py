# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The to_fleet filter: containers as read to a hzel_containers item list (documentation in to_fleet.yml)."""

from __future__ import annotations

from collections import Counter

from ansible.errors import AnsibleFilterError

from ansible_collections.hzel.cloud.plugins.module_utils._containers import is_container_id
from ansible_collections.hzel.cloud.plugins.module_utils._options import SPEC_FIELDS
from ansible_collections.hzel.cloud.plugins.module_utils._plan import is_hostname

# What each state of a container converges as: a provisioning container will be running.
STATE_AS_CODE = {"running": "running", "stopped": "stopped", "provisioning": "running"}
# How much of a refused value an error shows.
SHOWN_LIMIT = 80


def _records(value):
    if isinstance(value, dict) and "containers" in value:
        value = value["containers"]
    if not isinstance(value, list):
        raise AnsibleFilterError(
            "hzel.cloud.to_fleet expects the result of hzel.cloud.hzel_container_info (or its containers list), "
            "got %s" % type(value).__name__
        )
    for index, record in enumerate(value):
        if not isinstance(record, dict) or not isinstance(record.get("hostname"), str):
            raise AnsibleFilterError("hzel.cloud.to_fleet: containers[%d] is not a container record" % index)
    return value


def _shown(value):
    """A refused value for an error message: bounded, one line, and no template delimiter left whole."""
    text = value if isinstance(value, str) else repr(value)
    text = text[:SHOWN_LIMIT] + ("..." if len(text) > SHOWN_LIMIT else "")
    text = "".join(char if char.isprintable() else "?" for char in text)
    for opening in ("{{", "{%", "{#"):
        text = text.replace(opening, opening[0] + " " + opening[1])
    return text


def _refuse(index, field, value, expected):
    raise AnsibleFilterError(
        "hzel.cloud.to_fleet: containers[%d].%s is %r, not %s; refusing to write it down as code, since a fleet "
        "file is read back as trusted variables" % (index, field, _shown(value), expected)
    )


def _item(index, record, by_id):
    """One item of plain, checked values: a DNS label or a UUID, whole numbers and a fixed state word.

    Only such values are written, so the fleet file holds nothing that Ansible could template when it is read
    back with -e @fleet.yml, whatever the API answered.
    """
    hostname = record["hostname"]
    if not is_hostname(hostname):
        _refuse(index, "hostname", hostname, "a DNS label (lowercase letters, digits and inner hyphens)")
    if by_id:
        ident = record.get("id")
        if not is_container_id(ident):
            _refuse(index, "id", ident, "a container UUID")
        item = {"id": str(ident)}
    else:
        item = {"hostname": str(hostname)}
    for field in SPEC_FIELDS:
        if field in record:
            number = record[field]
            if isinstance(number, bool) or not isinstance(number, int):
                _refuse(index, field, number, "a whole number")
            item[field] = int(number)
    item["state"] = STATE_AS_CODE.get(record.get("state"), "present")
    return item


def to_fleet(value, include_failed=False):
    records = _records(value)
    if not isinstance(include_failed, bool):
        raise AnsibleFilterError("hzel.cloud.to_fleet: include_failed must be true or false")
    shared = {name for name, count in Counter(record["hostname"] for record in records).items() if count > 1}
    items = []
    ordered = sorted(enumerate(records), key=lambda pair: (pair[1]["hostname"], str(pair[1].get("id"))))
    for index, record in ordered:
        if record.get("state") == "failed" and not include_failed:
            continue
        # A hostname that two visible containers hold (an admin's view) can only be addressed by id.
        items.append(_item(index, record, record["hostname"] in shared))
    return items


class FilterModule:
    def filters(self):
        return {"to_fleet": to_fleet}
