# -*- coding: utf-8 -*-
# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The to_fleet filter: containers as read to a hzel_containers item list (documentation in to_fleet.yml)."""

from __future__ import annotations

from collections import Counter

from ansible.errors import AnsibleFilterError

from ansible_collections.hzel.cloud.plugins.module_utils._options import SPEC_FIELDS

# What each state of a container converges as: a provisioning container will be running.
STATE_AS_CODE = {"running": "running", "stopped": "stopped", "provisioning": "running"}


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


def to_fleet(value, include_failed=False):
    records = _records(value)
    if not isinstance(include_failed, bool):
        raise AnsibleFilterError("hzel.cloud.to_fleet: include_failed must be true or false")
    shared = {name for name, count in Counter(record["hostname"] for record in records).items() if count > 1}
    items = []
    for record in sorted(records, key=lambda record: (record["hostname"], str(record.get("id")))):
        state = record.get("state")
        if state == "failed" and not include_failed:
            continue
        # A hostname that two visible containers hold (an admin's view) can only be addressed by id.
        item = {"id": record.get("id")} if record["hostname"] in shared else {"hostname": record["hostname"]}
        for field in SPEC_FIELDS:
            if field in record:
                item[field] = record[field]
        item["state"] = STATE_AS_CODE.get(state, "present")
        items.append(item)
    return items


class FilterModule:
    def filters(self):
        return {"to_fleet": to_fleet}
