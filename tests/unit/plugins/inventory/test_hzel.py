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


def uuid_for(hostname):
    return "01942cf7-0000-7000-8000-%012d" % (sum(map(ord, hostname)) * 7919 % 10**12)


def container(hostname, state="running", cpu_cores=1, memory_mb=512, disk_gb=18):
    return {
        "id": uuid_for(hostname),
        "user_id": "01942cf6-0000-7000-8000-000000000001",
        "hostname": hostname,
        "state": state,
        "cpu_cores": cpu_cores,
        "memory_mb": memory_mb,
        "disk_gb": disk_gb,
        "created_at": "2026-11-30T00:00:00Z",
    }


FLEET = [
    container("web-2", cpu_cores=2),
    container("db-1", state="stopped", memory_mb=2048, disk_gb=30),
    container("web-1", cpu_cores=2),
]


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
        "hzel_id",
        "hzel_user_id",
        "hzel_hostname",
        "hzel_state",
        "hzel_cpu_cores",
        "hzel_memory_mb",
        "hzel_disk_gb",
        "hzel_created_at",
    }


def test_the_token_is_sent_as_a_bearer_token(api, tmp_path):
    parse(tmp_path, "")
    assert api.calls[0].request.headers["Authorization"] == "Bearer " + TOKEN


def test_state_and_jinja_filters_select_hosts(api, tmp_path):
    inventory = parse(tmp_path, "state: [running]\nfilters:\n  - hzel_cpu_cores >= 2\n  - hzel_hostname != 'web-2'\n")
    assert hostnames(inventory) == ["web-1"]


def test_constructed_options_add_groups_and_variables(api, tmp_path):
    config = (
        "keyed_groups:\n  - key: hzel_state\n    prefix: state\ngroups:\n  large: hzel_disk_gb >= 30\n"
        "compose:\n  ansible_host: hzel_hostname ~ '.example.net'\n"
    )
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
        api.get(
            LIST + "/" + item["id"] + "/metrics",
            json={
                "data": {
                    "cpu_percent": 5.5,
                    "memory_used_mb": 100,
                    "memory_total_mb": item["memory_mb"],
                    "disk_used_gb": 2.5,
                    "disk_total_gb": item["disk_gb"],
                }
            },
        )
    inventory = parse(tmp_path, "include_metrics: true\nmetrics_workers: 2\n")
    assert inventory.get_host("db-1").vars["hzel_memory_total_mb"] == 2048
    assert inventory.get_host("web-1").vars["hzel_cpu_percent"] == 5.5
    assert len(api.calls) == 4


def test_metrics_fetches_ride_out_a_429(api, tmp_path):
    first = FLEET[0]["id"]
    api.get(
        LIST + "/%s/metrics" % first,
        status=429,
        json={"error": {"code": "RATE_LIMITED", "message": "slow"}},
        headers={"Retry-After": "0"},
    )
    for item in FLEET:
        api.get(
            LIST + "/" + item["id"] + "/metrics",
            json={
                "data": {
                    "cpu_percent": 1.0,
                    "memory_used_mb": 1,
                    "memory_total_mb": 1,
                    "disk_used_gb": 1.0,
                    "disk_total_gb": 1,
                }
            },
        )
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


@pytest.mark.parametrize(
    "name, accepted",
    [
        ("a.hzel.yml", True),
        ("hzel.yaml", True),
        ("fleet.yml", False),
        ("hzel.yml.bak", False),
    ],
)
def test_only_hzel_yml_files_are_claimed(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text("plugin: hzel.cloud.hzel\n")
    assert load_plugin().verify_file(str(path)) is accepted


def metrics_for(item):
    return {
        "data": {
            "cpu_percent": 1.0,
            "memory_used_mb": 1,
            "memory_total_mb": item["memory_mb"],
            "disk_used_gb": 1.0,
            "disk_total_gb": item["disk_gb"],
        }
    }


def warnings_of(capsys):
    # Display writes warnings to stderr; older ansible-core wraps them at 80 columns.
    return " ".join(capsys.readouterr().err.split())


def test_a_metrics_failure_loses_that_host_s_metrics_not_the_inventory(api, tmp_path, capsys):
    for item in FLEET:
        if item["hostname"] == "web-1":
            api.get(LIST + "/%s/metrics" % item["id"], status=500, json={"error": {"code": "X", "message": "boom"}})
        else:
            api.get(LIST + "/%s/metrics" % item["id"], json=metrics_for(item))
    inventory = parse(tmp_path, "include_metrics: true\napi_retries: 0\n")
    assert hostnames(inventory) == ["db-1", "web-1", "web-2"]
    assert "hzel_cpu_percent" not in inventory.get_host("web-1").vars
    assert inventory.get_host("web-2").vars["hzel_cpu_percent"] == 1.0
    assert "no metrics for 1 of 3 hosts" in warnings_of(capsys)


def test_the_cache_is_not_shared_between_tokens_or_urls(api, tmp_path):
    cache_dir = tmp_path / "cache"
    config = "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n" % cache_dir
    parse(tmp_path, config, cache=False)
    api.replace(responses.GET, LIST, status=401, json={"error": {"code": "UNAUTHORIZED", "message": "no"}})
    with pytest.raises(AnsibleError) as failure:
        parse(tmp_path, config + "api_token: another-users-token\n", cache=True)
    assert "Authentication with the hzel API failed" in str(failure.value)
    # The first token still reads its own cache, without a request.
    calls = len(api.calls)
    assert hostnames(parse(tmp_path, config, cache=True)) == ["db-1", "web-1", "web-2"] and len(api.calls) == calls


def test_values_from_the_api_are_never_templates(tmp_path):
    from ansible.template import Templar

    hostile = dict(container("web-1"), created_at="{{ 7 * 6 }}", user_id="{{ lookup('env', 'HOME') }}")
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": [hostile]})
        inventory = parse(tmp_path, "")
    variables = inventory.get_host("web-1").vars
    templar = Templar(loader=DataLoader())
    # Rendered as data: an unmarked value would come back as '42' on ansible-core 2.17 and 2.18.
    assert templar.template(variables["hzel_created_at"]) == "{{ 7 * 6 }}"
    assert templar.template(variables["hzel_user_id"]) == "{{ lookup('env', 'HOME') }}"


@pytest.mark.parametrize("hostname", ["localhost", "all", "ungrouped", "hzel"])
def test_a_container_named_like_something_ansible_reserves_is_skipped_with_a_warning(tmp_path, capsys, hostname):
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": [container(hostname), container("web-1")]})
        inventory = parse(tmp_path, "")
    assert hostnames(inventory) == ["web-1"] and hostname not in inventory.hosts
    assert "skipped 1 container(s) with a hostname that is a name Ansible reserves" in warnings_of(capsys)


def test_a_hostname_that_two_containers_hold_is_skipped_naming_both_ids(tmp_path, capsys):
    twin = dict(container("web-1"), id="01942cf7-0000-7000-8000-000000000099")
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": [container("web-1"), twin, container("db-1")]})
        inventory = parse(tmp_path, "")
    assert hostnames(inventory) == ["db-1"]
    said = warnings_of(capsys)
    assert "more than one visible container holds" in said and twin["id"] in said and uuid_for("web-1") in said


def test_a_hostname_that_is_not_a_dns_label_is_skipped(tmp_path, capsys):
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": [container("web-1\n"), container("web-1")]})
        inventory = parse(tmp_path, "")
    assert hostnames(inventory) == ["web-1"] and "not a DNS label" in warnings_of(capsys)


def test_a_reply_of_the_wrong_shape_is_an_error_not_an_empty_inventory(tmp_path):
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": ["web-1"]})
        with pytest.raises(AnsibleError) as failure:
            parse(tmp_path, "")
    assert "something unexpected" in str(failure.value) and "GET %s" % LIST in str(failure.value)


@pytest.mark.parametrize(
    "config, says",
    [
        ("stat: [running]\n", "'stat' (did you mean 'state'?)"),
        ("include_metric: true\n", "'include_metric' (did you mean 'include_metrics'?)"),
    ],
)
def test_an_unknown_key_is_an_error_naming_the_nearest_option(api, tmp_path, config, says):
    with pytest.raises(AnsibleError) as failure:
        parse(tmp_path, config)
    assert "unknown option" in str(failure.value) and says in str(failure.value) and not api.calls


@pytest.mark.parametrize(
    "config, says",
    [
        ("api_timeout: .nan\n", "api_timeout must be a finite number"),
        ("api_timeout: 1e308\n", "api_timeout must be greater than 0 and at most 3600"),
        ("metrics_workers: 0\n", "metrics_workers must be at least 1"),
    ],
)
def test_absurd_numbers_are_refused(api, tmp_path, config, says):
    with pytest.raises(AnsibleError) as failure:
        parse(tmp_path, config)
    assert says in str(failure.value) and not api.calls


def test_a_token_with_a_newline_is_refused_without_being_shown(api, tmp_path):
    with pytest.raises(AnsibleError) as failure:
        parse(tmp_path, 'api_token: "abcdef-secret\\n"\n')
    assert "line break" in str(failure.value) and "abcdef" not in str(failure.value) and not api.calls


def test_an_api_that_echoes_the_token_in_an_error_page_never_shows_it(tmp_path):
    with responses.RequestsMock() as mock:
        mock.get(LIST, status=400, body="<pre>Authorization: Bearer %s</pre>" % TOKEN, content_type="text/html")
        with pytest.raises(AnsibleError) as failure:
            parse(tmp_path, "api_retries: 0\n")
    assert TOKEN not in str(failure.value) and "********" in str(failure.value)


def test_environment_fallbacks_and_defaults_are_the_same_for_modules_and_inventory():
    from ansible import constants

    from ansible_collections.hzel.cloud.plugins.module_utils._module import hzel_argument_spec
    from ansible_collections.hzel.cloud.plugins.module_utils._options import API_OPTIONS

    plugin = load_plugin()
    spec = hzel_argument_spec()
    documented = constants.config.get_configuration_definitions("inventory", plugin._load_name)
    for name, option in API_OPTIONS.items():
        assert spec[name]["fallback"][1] == [option.env]
        assert [entry["name"] for entry in documented[name]["env"]] == [option.env]
        assert spec[name].get("default") == option.default == documented[name].get("default")
