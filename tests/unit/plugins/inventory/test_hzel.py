# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest
import responses

from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader

from ansible.plugins.loader import inventory_loader

API = "http://hzel.test"
LIST = API + "/api/v1/containers"
TOKEN = "inventory-secret-token"


def container(hostname, state="running", cpu_cores=1, memory_mb=512, disk_gb=18):
    return {"id": "id-" + hostname, "user_id": "u1", "hostname": hostname, "state": state, "cpu_cores": cpu_cores,
            "memory_mb": memory_mb, "disk_gb": disk_gb, "created_at": "2026-11-30T00:00:00Z"}


FLEET = [container("web-2", cpu_cores=2), container("db-1", state="stopped", memory_mb=2048, disk_gb=30),
         container("web-1", cpu_cores=2)]


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(LIST, json={"data": FLEET})
        yield mock


def load_plugin():
    # Through the loader, as Ansible does, so that the plugin's documented options are known.
    return inventory_loader.get("hzel.cloud.hzel")


def parse(tmp_path, config, cache=True):
    path = tmp_path / "fleet.hzel.yml"
    lines = ["plugin: hzel.cloud.hzel", "api_url: %s" % API]
    if "api_token" not in config:
        lines.append("api_token: %s" % TOKEN)
    path.write_text("\n".join(lines) + "\n" + config)
    inventory = InventoryData()
    plugin = load_plugin()
    assert plugin.verify_file(str(path))
    plugin.parse(inventory, DataLoader(), str(path), cache=cache)
    if plugin.get_option("cache"):
        plugin.update_cache_if_changed()  # as the inventory manager does after each source
    return inventory


def hostnames(inventory, group="hzel"):
    return [host.name for host in inventory.groups[group].get_hosts()]


def test_every_container_is_a_host_in_group_hzel_in_hostname_order(api, tmp_path):
    inventory = parse(tmp_path, "")
    assert hostnames(inventory) == ["db-1", "web-1", "web-2"]
    variables = inventory.get_host("db-1").vars
    assert variables["hzel_state"] == "stopped" and variables["hzel_memory_mb"] == 2048
    assert {name for name in variables if name.startswith("hzel_")} == {
        "hzel_id", "hzel_user_id", "hzel_hostname", "hzel_state", "hzel_cpu_cores", "hzel_memory_mb",
        "hzel_disk_gb", "hzel_created_at"}


def test_the_token_is_sent_as_a_bearer_token(api, tmp_path):
    parse(tmp_path, "")
    assert api.calls[0].request.headers["Authorization"] == "Bearer " + TOKEN


def test_state_and_jinja_filters_select_hosts(api, tmp_path):
    inventory = parse(tmp_path, "state: [running]\nfilters:\n  - hzel_cpu_cores >= 2\n  - hzel_hostname != 'web-2'\n")
    assert hostnames(inventory) == ["web-1"]


def test_constructed_options_add_groups_and_variables(api, tmp_path):
    config = "keyed_groups:\n  - key: hzel_state\n    prefix: state\ngroups:\n  large: hzel_disk_gb >= 30\n" \
        "compose:\n  ansible_host: hzel_hostname ~ '.example.net'\n"
    inventory = parse(tmp_path, config)
    assert hostnames(inventory, "state_running") == ["web-1", "web-2"]
    assert hostnames(inventory, "large") == ["db-1"]
    assert inventory.get_host("web-1").vars["ansible_host"] == "web-1.example.net"


def test_another_prefix(api, tmp_path):
    inventory = parse(tmp_path, "hostvar_prefix: c_\n")
    assert inventory.get_host("web-1").vars["c_state"] == "running"
    assert "hzel_state" not in inventory.get_host("web-1").vars


def test_metrics_become_host_variables(api, tmp_path):
    for item in FLEET:
        api.get(LIST + "/" + item["id"] + "/metrics",
                json={"data": {"cpu_percent": 5.5, "memory_used_mb": 100, "memory_total_mb": item["memory_mb"],
                               "disk_used_gb": 2.5, "disk_total_gb": item["disk_gb"]}})
    inventory = parse(tmp_path, "include_metrics: true\nmetrics_workers: 2\n")
    assert inventory.get_host("db-1").vars["hzel_memory_total_mb"] == 2048
    assert inventory.get_host("web-1").vars["hzel_cpu_percent"] == 5.5
    assert len(api.calls) == 4


def test_metrics_fetches_ride_out_a_429(api, tmp_path):
    first = FLEET[0]["id"]
    api.get(LIST + "/%s/metrics" % first, status=429, json={"error": {"code": "RATE_LIMITED", "message": "slow"}},
            headers={"Retry-After": "0"})
    for item in FLEET:
        api.get(LIST + "/" + item["id"] + "/metrics",
                json={"data": {"cpu_percent": 1.0, "memory_used_mb": 1, "memory_total_mb": 1, "disk_used_gb": 1.0,
                               "disk_total_gb": 1}})
    inventory = parse(tmp_path, "include_metrics: true\n")
    assert inventory.get_host("web-2").vars["hzel_cpu_percent"] == 1.0


def test_a_cache_hit_sends_no_request_and_the_cache_holds_no_token(api, tmp_path):
    cache_dir = tmp_path / "cache"
    config = "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n" % cache_dir
    parse(tmp_path, config, cache=False)
    assert len(api.calls) == 1
    inventory = parse(tmp_path, config, cache=True)
    assert len(api.calls) == 1
    assert hostnames(inventory) == ["db-1", "web-1", "web-2"]
    written = "".join((cache_dir / name).read_text() for name in os.listdir(cache_dir))
    assert "web-1" in written and TOKEN not in written


def test_a_templated_token_is_rendered(api, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TOKEN_VAR", "from-env-token")
    parse(tmp_path, "api_token: \"{{ lookup('ansible.builtin.env', 'MY_TOKEN_VAR') }}\"\n")
    assert api.calls[0].request.headers["Authorization"] == "Bearer from-env-token"


def test_a_refused_token_is_a_clear_error_without_the_token(tmp_path):
    with responses.RequestsMock() as mock:
        mock.get(LIST, status=401, json={"error": {"code": "UNAUTHORIZED", "message": "Missing or invalid auth"}})
        with pytest.raises(AnsibleError) as failure:
            parse(tmp_path, "")
    assert "Authentication with the hzel API failed" in str(failure.value)
    assert TOKEN not in str(failure.value)


def test_a_missing_token_names_the_option_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("HZEL_API_TOKEN", raising=False)
    path = tmp_path / "fleet.hzel.yml"
    path.write_text("plugin: hzel.cloud.hzel\napi_url: %s\n" % API)
    with pytest.raises(AnsibleError) as failure:
        load_plugin().parse(InventoryData(), DataLoader(), str(path))
    assert "api_token" in str(failure.value) and "HZEL_API_TOKEN" in str(failure.value)


@pytest.mark.parametrize("name, accepted", [
    ("a.hzel.yml", True), ("hzel.yaml", True), ("fleet.yml", False), ("hzel.yml.bak", False),
])
def test_only_hzel_yml_files_are_claimed(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text("plugin: hzel.cloud.hzel\n")
    assert load_plugin().verify_file(str(path)) is accepted
