# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os
import re

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


@pytest.fixture(autouse=True)
def every_warning_shown():
    # Display shows a warning once per process; each test must see its own.
    from ansible.utils.display import Display

    getattr(Display(), "_warns", set()).clear()


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
        ("metrics_workers: 257\n", "metrics_workers must be at least 1 and at most 256"),
        ("metrics_processes: 0\n", "metrics_processes must be at least 1"),
        ("metrics_processes: 17\n", "metrics_processes must be at least 1 and at most 16"),
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


def ansible_core_templar():
    from ansible.template import Templar

    return Templar(loader=DataLoader())


def trusted(value):
    # How ansible-core 2.19 and later treat a string from a playbook: as a template. Earlier cores
    # template any string, so there the value is used as it is.
    try:
        from ansible.template import trust_as_template
    except ImportError:
        return value
    return trust_as_template(value)


def exported(inventory, monkeypatch):
    """The host variables as ansible-inventory --list --export prints them (its own JSON dump)."""
    import json

    from ansible import context
    from ansible.cli.inventory import InventoryCLI
    from ansible.module_utils.common.collections import ImmutableDict

    monkeypatch.setattr(context, "CLIARGS", ImmutableDict(yaml=False, toml=False, export=True))
    hostvars = {name: dict(host.vars) for name, host in inventory.hosts.items()}
    return json.loads(InventoryCLI.dump({"_meta": {"hostvars": hostvars}}))["_meta"]["hostvars"]


# connect_with, host_domain and connection_vars


@pytest.mark.parametrize(
    "config, address",
    [
        ("", None),
        ("connect_with: none\n", None),
        ("connect_with: hostname\n", "web-1"),
        ("connect_with: fqdn\nhost_domain: containers.example.net\n", "web-1.containers.example.net"),
        ("connect_with: fqdn\nhost_domain: containers.example.net.\n", "web-1.containers.example.net"),
        ("connect_with: fqdn\nhost_domain: LAN\n", "web-1.LAN"),
    ],
)
def test_connect_with_sets_ansible_host(api, tmp_path, config, address):
    variables = parse(tmp_path, config).get_host("web-1").vars
    assert variables.get("ansible_host") == address


@pytest.mark.parametrize(
    "config, says",
    [
        ("connect_with: fqdn\n", "host_domain must be a DNS name such as"),
        ("connect_with: fqdn\nhost_domain: .example.net\n", "must not start with a dot"),
        ("connect_with: fqdn\nhost_domain: example..net\n", "host_domain must be a DNS name: dot-separated labels"),
        ("connect_with: fqdn\nhost_domain: -bad.example.net\n", "not starting or ending with a hyphen"),
        ("connect_with: fqdn\nhost_domain: under_score.net\n", "host_domain must be a DNS name: dot-separated"),
        ("connect_with: fqdn\nhost_domain: %s.net\n" % ("a" * 64), "host_domain must be a DNS name: dot-separated"),
        ("connect_with: fqdn\nhost_domain: %s\n" % ".".join(["a" * 40] * 5), "at most 189"),
        ("host_domain: example.net\n", "host_domain is used only with connect_with: fqdn"),
        ("connect_with: hostname\nhost_domain: example.net\n", "host_domain is used only with connect_with: fqdn"),
    ],
)
def test_a_bad_host_domain_is_an_error_before_any_request(api, tmp_path, config, says):
    with pytest.raises(AnsibleError) as failure:
        parse(tmp_path, config)
    assert says in str(failure.value) and not api.calls


def test_connection_vars_reach_every_host_as_literal_values(api, tmp_path):
    config = (
        "connection_vars:\n"
        "  ansible_user: deploy\n"
        "  ansible_port: 2222\n"
        "  ansible_become: true\n"
        "  ansible_ssh_common_args: -o ProxyJump=jump@bastion.example.net\n"
        "  ansible_python_interpreter: \"{{ interpreter_of_the_day }}\"\n"
    )
    inventory = parse(tmp_path, config)
    templar = ansible_core_templar()
    for name in ("db-1", "web-1", "web-2"):
        variables = inventory.get_host(name).vars
        assert variables["ansible_user"] == "deploy" and variables["ansible_port"] == 2222
        assert variables["ansible_become"] is True
        assert variables["ansible_ssh_common_args"] == "-o ProxyJump=jump@bastion.example.net"
        # Never templated: the variable is undefined, so templating it would fail.
        assert templar.template(variables["ansible_python_interpreter"]) == "{{ interpreter_of_the_day }}"


def test_compose_overrides_connect_with_and_connection_vars(api, tmp_path):
    config = (
        "connect_with: fqdn\nhost_domain: example.net\n"
        "connection_vars:\n  ansible_user: deploy\n  ansible_port: 22\n"
        "compose:\n  ansible_user: hzel_hostname\n  ansible_host: \"'10.0.0.1'\"\n"
    )
    variables = parse(tmp_path, config).get_host("web-1").vars
    assert variables["ansible_user"] == "web-1"
    assert variables["ansible_host"] == "10.0.0.1"
    assert variables["ansible_port"] == 22


def test_one_address_for_every_host_with_the_user_naming_the_container(api, tmp_path):
    config = (
        "connection_vars:\n  ansible_host: 127.0.0.1\n  ansible_port: 2222\ncompose:\n  ansible_user: hzel_hostname\n"
    )
    inventory = parse(tmp_path, config)
    for name in ("db-1", "web-1"):
        variables = inventory.get_host(name).vars
        assert (variables["ansible_host"], variables["ansible_port"], variables["ansible_user"]) == (
            "127.0.0.1",
            2222,
            name,
        )


def test_compose_sees_the_connection_variables(api, tmp_path):
    config = "connection_vars:\n  ansible_user: deploy\ncompose:\n  login: ansible_user ~ '@' ~ hzel_hostname\n"
    assert parse(tmp_path, config).get_host("web-1").vars["login"] == "deploy@web-1"


@pytest.mark.parametrize(
    "config, says",
    [
        ("connection_vars:\n  ansible_usr: x\n", "'ansible_usr' (did you mean 'ansible_user'?)"),
        ("connection_vars:\n  http_proxy: x\n", "'http_proxy'"),
        ("connect_with: hostname\nconnection_vars:\n  ansible_host: 10.0.0.1\n", "both set ansible_host"),
        (
            "connection_vars:\n  ansible_port: 2.5\n",
            "ansible_port must be a string, a whole number or true/false, not a number with a fraction",
        ),
        (
            "connection_vars:\n  ansible_user: [a, b]\n",
            "connection_vars.ansible_user must be a string, a whole number or true/false, not a list",
        ),
        (
            "connection_vars:\n  ansible_user:\n",
            "connection_vars.ansible_user must be a string, a whole number or true/false, not null",
        ),
    ],
)
def test_connection_vars_takes_connection_variables_only(api, tmp_path, config, says):
    with pytest.raises(AnsibleError) as failure:
        parse(tmp_path, config)
    assert says in str(failure.value) and not api.calls


@pytest.mark.parametrize("name", ["ansible_password", "ansible_ssh_pass", "ansible_become_password"])
def test_a_secret_in_connection_vars_is_refused_without_repeating_it(api, tmp_path, name):
    with pytest.raises(AnsibleError) as failure:
        parse(tmp_path, "connection_vars:\n  %s: hunter2-secret\n" % name)
    said = str(failure.value)
    assert "must not hold a secret (%s)" % name in said and "hunter2" not in said and not api.calls


# Templated API options and extra variables


def given_extra_vars(monkeypatch, *pairs):
    """As ansible-inventory -e NAME=VALUE ... does: the command line arguments, read once per process."""
    from ansible import context
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.utils.vars import load_extra_vars

    monkeypatch.setattr(context, "CLIARGS", ImmutableDict(extra_vars=pairs))
    monkeypatch.setattr(load_extra_vars, "extra_vars", None, raising=False)


def test_the_token_may_come_from_an_extra_variable(api, tmp_path, monkeypatch):
    given_extra_vars(monkeypatch, "hzel_token=from-extra-vars")
    parse(tmp_path, 'api_token: "{{ hzel_token }}"\n')
    assert api.calls[0].request.headers["Authorization"] == "Bearer from-extra-vars"


def test_an_api_url_from_an_extra_variable_without_the_token_in_any_error(tmp_path, monkeypatch):
    given_extra_vars(monkeypatch, "hzel_url=%s" % API)
    path = tmp_path / "fleet.hzel.yml"
    path.write_text('plugin: hzel.cloud.hzel\napi_url: "{{ hzel_url }}"\napi_token: %s\n' % TOKEN)
    with responses.RequestsMock() as mock:
        mock.get(LIST, status=401, json={"error": {"code": "UNAUTHORIZED", "message": "bad " + TOKEN}})
        with pytest.raises(AnsibleError) as failure:
            load_plugin().parse(InventoryData(), DataLoader(), str(path))

    assert "Authentication with the hzel API failed" in str(failure.value) and TOKEN not in str(failure.value)


# Which values are marked unsafe


HOSTILE = [
    "{{ 6 * 7 }}",
    "{% if true %}42{% endif %}",
    "{# a comment #}x",
    "#jinja2:variable_start_string:'[[',variable_end_string:']]'\n[[ 6*7 ]]",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_a_value_that_could_be_a_template_is_never_rendered(tmp_path, hostile):
    record = dict(container("web-1"), created_at=hostile, user_id=hostile)
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": [record]})
        inventory = parse(tmp_path, "compose:\n  echoed: hzel_created_at\n")
    variables = inventory.get_host("web-1").vars
    templar = ansible_core_templar()
    # This is what the value would become if it were templated: the test shows it is a template.
    assert templar.template(trusted(hostile)) != hostile
    assert templar.template(variables["hzel_created_at"]) == hostile
    assert templar.template(variables["hzel_user_id"]) == hostile
    assert templar.template(variables["echoed"]) == hostile


def test_ordinary_values_are_exported_plain_and_hostile_ones_marked(tmp_path, monkeypatch):
    record = dict(container("web-1"), created_at="{{ 6 * 7 }}")
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": [record]})
        inventory = parse(
            tmp_path,
            "connect_with: fqdn\nhost_domain: example.net\nconnection_vars:\n  ansible_user: deploy\n"
            "  ansible_port: 2222\n  ansible_ssh_common_args: -o ProxyCommand=\"ssh -W %h:%p jump\"\n",
        )
    variables = exported(inventory, monkeypatch)["web-1"]
    assert variables["hzel_hostname"] == "web-1"
    assert variables["hzel_id"] == record["id"] and variables["hzel_state"] == "running"
    assert variables["hzel_cpu_cores"] == 1 and variables["hzel_memory_mb"] == 512
    assert variables["ansible_host"] == "web-1.example.net"
    assert variables["ansible_user"] == "deploy" and variables["ansible_port"] == 2222
    assert variables["ansible_ssh_common_args"] == '-o ProxyCommand="ssh -W %h:%p jump"'
    assert variables["hzel_created_at"] == {"__ansible_unsafe": "{{ 6 * 7 }}"}


@pytest.mark.parametrize(
    "plain",
    ["web-1", "2026-11-30T00:00:00Z", "-o ProxyCommand=ssh -W %h:%p jump", "100%", "a [[ b ]] c", "x }"[:-1], "$HOME"],
)
def test_a_string_left_plain_renders_as_itself_even_when_trusted(plain):
    from ansible_collections.hzel.cloud.plugins.inventory.hzel import as_data

    value = as_data(plain)
    assert ansible_core_templar().template(trusted(value)) == plain == value


# Cache


def metrics_routes(api, items=None):
    for item in FLEET if items is None else items:
        api.get(LIST + "/%s/metrics" % item["id"], json=metrics_for(item))


def metrics_calls(api):
    return [call for call in api.calls if call.request.url.endswith("/metrics")]


def test_a_warm_cache_without_metrics_does_not_answer_a_run_that_asks_for_them(api, tmp_path):
    metrics_routes(api)
    cache = "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n" % (tmp_path / "cache")
    parse(tmp_path, cache, cache=False)
    inventory = parse(tmp_path, cache + "include_metrics: true\n", cache=True)
    assert inventory.get_host("web-1").vars["hzel_cpu_percent"] == 1.0
    calls = len(api.calls)
    # And that cache, now with metrics, answers the next run alone.
    assert parse(tmp_path, cache + "include_metrics: true\n").get_host("db-1").vars["hzel_cpu_percent"] == 1.0
    assert len(api.calls) == calls


def test_metrics_are_fetched_only_for_containers_that_become_hosts(tmp_path):
    fleet = FLEET + [container("localhost"), container("large"), container("web-3", state="stopped")]
    twins = [container("twin"), dict(container("twin"), id="01942cf7-0000-7000-8000-000000000098")]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(LIST, json={"data": fleet + twins})
        metrics_routes(mock, fleet + twins)
        inventory = parse(tmp_path, "include_metrics: true\nstate: [running]\ngroups:\n  large: hzel_disk_gb >= 30\n")
        fetched = sorted(call.request.url.split("/")[-2] for call in metrics_calls(mock))
    assert hostnames(inventory) == ["web-1", "web-2"]
    assert fetched == sorted([uuid_for("web-1"), uuid_for("web-2")])


def test_a_failed_metrics_fetch_is_not_cached(api, tmp_path, capsys):
    web1 = FLEET[2]
    api.get(LIST + "/%s/metrics" % web1["id"], status=500, json={"error": {"code": "X", "message": "boom"}})
    metrics_routes(api)
    cache = "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n" % (tmp_path / "cache")
    config = cache + "include_metrics: true\napi_retries: 0\n"
    first = parse(tmp_path, config, cache=False)
    assert "hzel_cpu_percent" not in first.get_host("web-1").vars and "no metrics for 1 of 3" in warnings_of(capsys)
    # The 500 was answered once; the next run asks again and gets the metrics.
    second = parse(tmp_path, config, cache=True)
    assert second.get_host("web-1").vars["hzel_cpu_percent"] == 1.0


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_a_metrics_value_that_is_not_a_finite_number_gives_no_metrics_and_valid_json(tmp_path, capsys, bad):
    import json

    web1 = container("web-1")
    reply = '{"data": {"cpu_percent": %s, "memory_used_mb": 1, "memory_total_mb": 512, "disk_used_gb": 1.0, ' % bad
    reply += '"disk_total_gb": 18}}'
    cache = "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n" % (tmp_path / "cache")
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": [web1]})
        mock.get(LIST + "/%s/metrics" % web1["id"], body=reply, content_type="application/json")
        inventory = parse(tmp_path, cache + "include_metrics: true\napi_retries: 0\n", cache=False)
    variables = inventory.get_host("web-1").vars
    assert "hzel_cpu_percent" not in variables and "no metrics for 1 of 1" in warnings_of(capsys)
    json.dumps(dict(variables), allow_nan=False)
    # Nor is that run cached.
    assert not (tmp_path / "cache").exists() or not os.listdir(tmp_path / "cache")


# Group names


@pytest.mark.parametrize(
    "config, shadow",
    [
        ("groups:\n  large: hzel_disk_gb >= 30\n", "large"),
        # 'large' itself meets the condition: it would have been added to a group of its own name.
        ("groups:\n  large: hzel_disk_gb >= 18\n", "large"),
        # Keyed group names are sanitised ('-' becomes '_'): these can still be DNS labels.
        ("keyed_groups:\n  - key: hzel_cpu_cores | string\n    prefix: cores\n    separator: ''\n", "cores2"),
        ("keyed_groups:\n  - key: hzel_state\n    prefix: ''\n    separator: ''\n", "running"),
    ],
)
def test_a_container_named_like_a_constructed_group_is_skipped_whatever_the_order(tmp_path, capsys, config, shadow):
    # The container sorts first, so the group does not exist yet when it would be added.
    fleet = [container(shadow, state="stopped"), container("zz-8", cpu_cores=2, disk_gb=30), container("zz-9")]
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": fleet})
        inventory = parse(tmp_path, config)
    assert shadow not in inventory.hosts and hostnames(inventory) == ["zz-8", "zz-9"]
    said = warnings_of(capsys)
    assert "skipped 1 container(s) with a hostname that is the name of a group" in said and shadow in said


# Warnings never carry the token


ODD_TOKEN = 'tok"en/with%chars-0123456789'


def token_pieces():
    from urllib.parse import quote

    forms = [ODD_TOKEN, json_escaped(ODD_TOKEN), quote(ODD_TOKEN, safe="")]
    return {form[start : start + 8] for form in forms for start in range(len(form) - 7)}


def json_escaped(text):
    import json

    return json.dumps(text)[1:-1]


def test_warnings_about_records_never_show_a_piece_of_the_token(tmp_path, capsys):
    from urllib.parse import quote

    records = [
        container("x" * 60 + ODD_TOKEN + "\n"),
        container("y" * 50 + json_escaped(ODD_TOKEN)),
        container("z" * 50 + quote(ODD_TOKEN, safe="")),
        dict(container("twin"), id="id-" + ODD_TOKEN),
        dict(container("twin"), id="id-" + json_escaped(ODD_TOKEN) + "-" + quote(ODD_TOKEN, safe="")),
        container("web-1"),
    ]
    path = tmp_path / "fleet.hzel.yml"
    path.write_text("plugin: hzel.cloud.hzel\napi_url: %s\napi_token: '%s'\n" % (API, ODD_TOKEN))
    inventory = InventoryData()
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": records})
        load_plugin().parse(inventory, DataLoader(), str(path))
    said = capsys.readouterr().err
    # Older ansible-core wraps warnings at 80 columns: look at the text without any white space too.
    compact = "".join(said.split())
    assert "notaDNSlabel" in compact and "morethanonevisiblecontainerholds" in compact
    assert list(inventory.hosts) == ["web-1"]
    assert [piece for piece in token_pieces() if piece in said or piece in compact] == []


# Values from the API that are not templates but could still be evaluated, and tokens that look like templates


@pytest.mark.parametrize(
    "hostile",
    [
        "x' and lookup('pipe','touch /tmp/pwned') and '",
        "2026-11-30T00:00:00Z or true",
        "x)|length",
        "a b",
    ],
)
def test_an_api_value_that_is_not_an_id_timestamp_or_name_is_marked_unsafe(tmp_path, monkeypatch, hostile):
    record = dict(container("web-1"), created_at=hostile, user_id=hostile)
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": [record]})
        inventory = parse(tmp_path, "")
    variables = exported(inventory, monkeypatch)["web-1"]
    assert variables["hzel_created_at"] == {"__ansible_unsafe": hostile}
    assert variables["hzel_user_id"] == {"__ansible_unsafe": hostile}
    assert variables["hzel_id"] == record["id"] and variables["hzel_hostname"] == "web-1"


def test_a_token_from_the_environment_is_never_templated(api, tmp_path, monkeypatch):
    token = "Sx9{{kQ7-secret-part"
    monkeypatch.setenv("HZEL_API_TOKEN", token)
    path = tmp_path / "fleet.hzel.yml"
    path.write_text("plugin: hzel.cloud.hzel\napi_url: %s\n" % API)
    load_plugin().parse(InventoryData(), DataLoader(), str(path))
    assert api.calls[0].request.headers["Authorization"] == "Bearer " + token


@pytest.mark.parametrize(
    "written, extra",
    [
        ('"Sx9{{kQ7-secret-part"', None),
        ('"{{ hzel_token }}"', '{"hzel_token": "Sx9{{kQ7-secret-part"}'),
    ],
)
def test_a_token_that_looks_like_a_template_is_sent_as_it_is_or_refused_without_being_shown(
    tmp_path, monkeypatch, written, extra
):
    # Cores differ: some take such a value as it is (and send it), others template it again and fail (the
    # option is then named, never its value).
    if extra:
        given_extra_vars(monkeypatch, extra)
    path = tmp_path / "fleet.hzel.yml"
    path.write_text("plugin: hzel.cloud.hzel\napi_url: %s\napi_token: %s\napi_retries: 0\n" % (API, written))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(LIST, status=401, json={"error": {"code": "UNAUTHORIZED", "message": "no"}})
        with pytest.raises(AnsibleError) as failure:
            load_plugin().parse(InventoryData(), DataLoader(), str(path))
        sent = [call.request.headers["Authorization"] for call in mock.calls]
    message = str(failure.value)
    assert "kQ7" not in message and "secret" not in message
    assert sent in ([], ["Bearer Sx9{{kQ7-secret-part"])
    if not sent:
        assert "api_token" in message and "could not be templated" in message


# ansible-core 2.22 and later: the token is registered with core's secret masking, whatever its source


@pytest.mark.parametrize("source", ["option", "environment", "extra var"])
def test_with_secret_masking_core_masks_the_token_in_what_it_prints(api, tmp_path, monkeypatch, capsys, source):
    secrets = pytest.importorskip("ansible.module_utils.secrets", reason="ansible-core 2.22 and later mask secrets")
    from ansible.utils.display import Display

    token = "registered-%s-token-0123" % source.replace(" ", "-")
    path = tmp_path / "fleet.hzel.yml"
    config = "plugin: hzel.cloud.hzel\napi_url: %s\n" % API
    if source == "option":
        config += "api_token: %s\n" % token
    elif source == "environment":
        monkeypatch.setenv("HZEL_API_TOKEN", token)
    else:
        config += "api_token: '{{ hzel_token }}'\n"
        given_extra_vars(monkeypatch, "hzel_token=%s" % token)
    path.write_text(config)
    plugin = load_plugin()
    assert secrets.mask_secrets("before parse: %s" % token) == "before parse: %s" % token
    plugin.parse(InventoryData(), DataLoader(), str(path))
    assert api.calls[-1].request.headers["Authorization"] == "Bearer " + token
    # A hostile API's echo, printed by core itself (not through the plugin's own scrubbing).
    Display().warning("the API answered: unknown token %s" % token)
    said = capsys.readouterr().err
    assert token not in said and "$REDACTED$" in said


# Connection names that a resolver reads as an IP address


def parse_fleet(tmp_path, fleet, config):
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": fleet})
        return parse(tmp_path, config)


@pytest.mark.parametrize("hostname", ["2130706433", "0x7f000001", "0", "2852039166", "0177", "00", "0x"])
def test_a_hostname_that_reads_as_an_address_is_never_the_connection_address(tmp_path, capsys, hostname):
    inventory = parse_fleet(tmp_path, [container(hostname), container("web-1")], "connect_with: hostname\n")
    assert hostnames(inventory) == ["web-1"] and hostname not in inventory.hosts
    assert inventory.get_host("web-1").vars["ansible_host"] == "web-1"
    said = warnings_of(capsys)
    assert said.count("hzel inventory:") == 1
    assert "skipped 1 container(s) with a connection name that a resolver reads as an IP address" in said
    assert hostname in said


@pytest.mark.parametrize(
    "hostname, domain, address",
    [
        ("127", "0.0.1", "127.0.0.1"),
        ("10", "1", "10.1"),
        ("169", "254.169.254.", "169.254.169.254"),
        ("1", "0x2", "1.0x2"),
    ],
)
def test_an_fqdn_that_reads_as_an_address_is_never_the_connection_address(tmp_path, capsys, hostname, domain, address):
    config = "connect_with: fqdn\nhost_domain: '%s'\n" % domain
    inventory = parse_fleet(tmp_path, [container(hostname), container("web-1")], config)
    assert hostnames(inventory) == ["web-1"]
    assert "%s (%s)" % (hostname, address) in warnings_of(capsys)


@pytest.mark.parametrize("hostname", ["web-1", "1web", "0xg", "1e5", "x0"])
def test_a_name_that_is_not_a_number_still_connects_by_name(tmp_path, capsys, hostname):
    inventory = parse_fleet(tmp_path, [container(hostname)], "connect_with: hostname\n")
    assert inventory.get_host(hostname).vars["ansible_host"] == hostname
    assert "resolver reads" not in warnings_of(capsys)


def test_a_numeric_hostname_under_a_dns_domain_connects_by_its_fqdn(tmp_path):
    inventory = parse_fleet(tmp_path, [container("2130706433")], "connect_with: fqdn\nhost_domain: example.net\n")
    assert inventory.get_host("2130706433").vars["ansible_host"] == "2130706433.example.net"


def test_a_numeric_hostname_is_listed_when_connect_with_sets_no_address(tmp_path):
    inventory = parse_fleet(tmp_path, [container("2130706433")], "")
    assert hostnames(inventory) == ["2130706433"] and "ansible_host" not in inventory.get_host("2130706433").vars


# keyed_groups over numbers


@pytest.mark.parametrize(
    "key, groups",
    [
        ("hzel_memory_mb", {"memory_512": ["web-1", "web-2"], "memory_2048": ["db-1"]}),
        ("hzel_cpu_cores * 1.5", {"memory_1_5": ["db-1"], "memory_3_0": ["web-1", "web-2"]}),
        ("[hzel_memory_mb, hzel_state]", {"memory_512": ["web-1", "web-2"], "memory_stopped": ["db-1"]}),
    ],
)
def test_a_keyed_group_over_a_number_groups_by_its_digits(api, tmp_path, key, groups):
    inventory = parse(tmp_path, "keyed_groups:\n  - key: \"%s\"\n    prefix: memory\n" % key)
    for name, members in groups.items():
        assert hostnames(inventory, name) == members
    assert hostnames(inventory) == ["db-1", "web-1", "web-2"]


def test_the_documented_keyed_group_example_groups_by_memory(api, tmp_path):
    import yaml

    from ansible_collections.hzel.cloud.plugins.inventory.hzel import EXAMPLES

    example = next(doc for doc in yaml.safe_load_all(EXAMPLES) if "keyed_groups" in doc)
    config = {key: value for key, value in example.items() if key not in ("plugin", "api_url", "api_token")}
    inventory = parse(tmp_path, yaml.safe_dump(config))
    assert hostnames(inventory, "memory_512") == ["web-1", "web-2"]


def test_a_number_composed_for_a_variable_is_left_as_compose_makes_it(api, tmp_path):
    compose = "compose:\n  ansible_port: '2200 + hzel_cpu_cores'\n"
    alone = parse(tmp_path, compose).get_host("web-1").vars["ansible_port"]
    keyed = parse(tmp_path, compose + "keyed_groups:\n  - key: hzel_cpu_cores\n").get_host("web-1").vars["ansible_port"]
    assert int(keyed) == 2202 and type(keyed) is type(alone)


# Messages about the configuration


def test_a_missing_host_domain_is_said_to_be_required(api, tmp_path):
    with pytest.raises(AnsibleError) as failure:
        parse(tmp_path, "connect_with: fqdn\n")
    assert "host_domain is required with connect_with: fqdn" in str(failure.value)


def test_a_file_of_another_name_says_why_at_vvv(tmp_path, capsys):
    from ansible.utils.display import Display

    path = tmp_path / "fleet.yml"
    path.write_text("plugin: hzel.cloud.hzel\n")
    display = Display()
    verbosity, display.verbosity = display.verbosity, 3
    try:
        assert load_plugin().verify_file(str(path)) is False
    finally:
        display.verbosity = verbosity
    said = " ".join(capsys.readouterr().out.split())
    assert "the file name must end in hzel.yml or hzel.yaml" in said and str(path) in said


# shard and api_rate_limit


def test_shards_split_the_fleet_each_host_in_exactly_one_and_metrics_only_for_its_own(tmp_path):
    import zlib

    fleet = [container("web-%d" % number) for number in range(1, 41)]
    seen = {}
    for index in range(3):
        with responses.RequestsMock() as mock:
            mock.get(LIST, json={"data": fleet})
            for item in fleet:
                mock.get(LIST + "/%s/metrics" % item["id"], json=metrics_for(item))
            inventory = parse(tmp_path, "include_metrics: true\nshard:\n  count: 3\n  index: %d\n" % index)
            asked = sorted(call.request.url.split("/")[-2] for call in mock.calls[1:])
            mock.assert_all_requests_are_fired = False
        names = hostnames(inventory)
        assert names and all(zlib.crc32(name.encode("utf-8")) % 3 == index for name in names)
        assert asked == sorted(uuid_for(name) for name in names)
        for name in names:
            seen[name] = seen.get(name, 0) + 1
    assert seen == {item["hostname"]: 1 for item in fleet}


def test_a_new_container_never_moves_an_existing_host_to_another_shard(api, tmp_path):
    before = set(hostnames(parse(tmp_path, "shard: {count: 4, index: 1}\n")))
    FLEET_GROWN = FLEET + [container("web-%d" % number) for number in range(3, 30)]
    with responses.RequestsMock() as mock:
        mock.get(LIST, json={"data": FLEET_GROWN})
        after = set(hostnames(parse(tmp_path, "shard: {count: 4, index: 1}\n")))
    assert before <= after


@pytest.mark.parametrize(
    "config, message",
    [
        ("shard: {count: 2, index: 2}\n", "shard.index must be from 0 to 1"),
        ("shard: {count: 0, index: 0}\n", "shard.count must be from 1 to 1000"),
        ("shard: {count: 2, indx: 0}\n", "unknown key 'indx' (did you mean 'index'?)"),
        ("api_rate_limit: 0\n", "api_rate_limit"),
        ("api_rate_limit: -3\n", "api_rate_limit"),
    ],
)
def test_bad_shard_or_rate_limit_is_one_message_before_any_request(tmp_path, config, message):
    with responses.RequestsMock() as mock:
        with pytest.raises(AnsibleError) as failure:
            parse(tmp_path, config)
        assert not mock.calls
    assert message in str(failure.value)


@pytest.mark.parametrize("given", ["file", "environment"])
def test_api_rate_limit_reaches_the_client_that_makes_every_request(api, tmp_path, monkeypatch, given):
    import importlib

    plugin_module = importlib.import_module("ansible_collections.hzel.cloud.plugins.inventory.hzel")
    built = []
    real = plugin_module.build_client

    def recording(options, **kwargs):
        client = real(options, **kwargs)
        built.append(client.transport.gate)
        return client

    monkeypatch.setattr(plugin_module, "build_client", recording)
    if given == "environment":
        monkeypatch.setenv("HZEL_API_RATE_LIMIT", "2.5")
        parse(tmp_path, "")
    else:
        parse(tmp_path, "api_rate_limit: 2.5\n")
    assert len(built) == 1 and built[0].rate_limit == 2.5


def large_fleet(api, count, list_headers=None):
    fleet = [container("node-%05d" % number) for number in range(count)]
    api.replace(responses.GET, LIST, json={"data": fleet}, headers=list_headers or {})
    api.get(
        re.compile(re.escape(LIST) + "/[0-9a-f-]+/metrics"),
        json={
            "data": {
                "cpu_percent": 3.5,
                "memory_used_mb": 1,
                "memory_total_mb": 512,
                "disk_used_gb": 1.0,
                "disk_total_gb": 18,
            }
        },
    )
    return fleet


@pytest.fixture
def spread(monkeypatch):
    """How many clients (one per process) each metrics fan-out was given."""
    from ansible_collections.hzel.cloud.plugins.inventory import hzel

    counts = []
    real = hzel.fetch_metrics_spread

    def counted(apis, records, workers):
        counts.append(len(apis))
        return real(apis, records, workers)

    monkeypatch.setattr(hzel, "fetch_metrics_spread", counted)
    return counts


def test_a_large_inventory_reads_its_metrics_in_several_processes(api, tmp_path, spread):
    large_fleet(api, 2500)
    inventory = parse(tmp_path, "include_metrics: true\nmetrics_processes: 4\n")
    # At least 1,000 reads per process: 2 of the 4 asked for.
    assert spread == [2]
    assert len(inventory.hosts) == 2500
    assert all(host.vars["hzel_cpu_percent"] == 3.5 for host in inventory.hosts.values())


@pytest.mark.parametrize(
    "config, headers, limited_first",
    [
        ("api_rate_limit: 500\n", {}, False),
        ("", {"RateLimit-Limit": "100000", "RateLimit-Remaining": "99999", "RateLimit-Reset": "60"}, False),
        ("", {}, True),
    ],
)
def test_under_a_limit_the_list_s_client_reads_the_metrics_in_this_process(
    api, tmp_path, spread, config, headers, limited_first, monkeypatch
):
    from ansible_collections.hzel.cloud.plugins.inventory import hzel

    large_fleet(api, 2500, headers)
    if limited_first:
        # The list is answered 429 once: the client that saw it reads the metrics, with what it learnt.
        api.replace(
            responses.GET,
            LIST,
            status=429,
            json={"error": {"code": "RATE_LIMITED", "message": "slow down"}},
            headers={"Retry-After": "0"},
        )
        api.add(responses.GET, LIST, json={"data": [container("node-%05d" % n) for n in range(2500)]})
    clients = []
    real_fetch = hzel.fetch_metrics

    def fetch(client, records, workers):
        clients.append(client)
        return real_fetch(client, records, workers)

    monkeypatch.setattr(hzel, "fetch_metrics", fetch)
    inventory = parse(tmp_path, config + "include_metrics: true\nmetrics_processes: 4\n")
    assert spread == [] and len(clients) == 1
    # The very client that read the list: its gate holds what the list's reply said.
    assert clients[0].transport.gate.budget_stated == bool(headers)
    assert clients[0].transport.rate.limited == (1 if limited_first else 0)
    assert all(host.vars["hzel_cpu_percent"] == 3.5 for host in inventory.hosts.values())
