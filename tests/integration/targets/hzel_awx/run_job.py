#!/usr/bin/env python
"""Run hzel.cloud.provision and an inventory update through ansible-runner, as AWX does.

The credential reaches the job only through the environment that the credential
type's injectors describe (rendered here with Jinja2, as AWX renders them).
"""

import json
import os
import sys
import tempfile
import urllib.request

import ansible_runner
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

TOKEN = "hzel-demo-token"
FLEET = [
    {"hostname": "awx-web-1", "cpu_cores": 2},
    {"hostname": "awx-web-2", "cpu_cores": 2},
    {"hostname": "awx-batch", "state": "stopped"},
]
SITE = """
- name: Provision the fleet
  ansible.builtin.import_playbook: hzel.cloud.provision
"""


def injected_environment(credential_type_path, inputs):
    with open(credential_type_path, encoding="utf-8") as handle:
        credential_type = yaml.safe_load(handle)
    fields = {field["id"] for field in credential_type["inputs"]["fields"]}
    assert set(inputs) <= fields, "unknown credential inputs"
    environment = ImmutableSandboxedEnvironment()
    return {
        name: environment.from_string(template).render(**inputs)
        for name, template in credential_type["injectors"]["env"].items()
    }


def containers(url):
    request = urllib.request.Request(url + "/api/v1/containers")
    request.add_header("Authorization", "Bearer " + TOKEN)
    with urllib.request.urlopen(request) as response:
        return {c["hostname"]: c["state"] for c in json.load(response)["data"]}


def files_containing(root, needle):
    found = []
    for base, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(base, name)
            with open(path, "rb") as handle:
                if needle.encode() in handle.read():
                    found.append(path)
    return found


def main(config_path, credential_type_path):
    with open(config_path, encoding="utf-8") as handle:
        url = yaml.safe_load(handle)["hzel_api_url"]
    urllib.request.urlopen(urllib.request.Request(url + "/_emulator/reset", method="POST"))
    envvars = injected_environment(credential_type_path, {"hzel_api_url": url, "hzel_api_token": TOKEN})
    assert envvars == {"HZEL_API_URL": url, "HZEL_API_TOKEN": TOKEN}, envvars
    envvars["ANSIBLE_COLLECTIONS_PATH"] = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "")
    envvars["ANSIBLE_LOCALHOST_WARNING"] = "false"
    envvars["ANSIBLE_INVENTORY_UNPARSED_WARNING"] = "false"

    with tempfile.TemporaryDirectory() as private_data_dir:
        project = os.path.join(private_data_dir, "project")
        os.makedirs(project)
        with open(os.path.join(project, "site.yml"), "w", encoding="utf-8") as handle:
            handle.write(SITE)
        with open(os.path.join(project, "fleet.hzel.yml"), "w", encoding="utf-8") as handle:
            handle.write("plugin: hzel.cloud.hzel\n")

        job = ansible_runner.run(
            private_data_dir=private_data_dir,
            playbook="site.yml",
            envvars=envvars,
            extravars={"hzel_fleet_containers": FLEET},
            quiet=True,
            ident="job",
        )
        print("job: status=%s rc=%s" % (job.status, job.rc))
        assert job.status == "successful" and job.rc == 0, job.stdout.read()
        assert containers(url) == {"awx-web-1": "running", "awx-web-2": "running", "awx-batch": "stopped"}
        # Everything the runner recorded of the job (stdout, events, status) except 'command', which records
        # the whole process environment, credentials included; AWX keeps that one to itself.
        artifacts = os.path.join(private_data_dir, "artifacts", "job")
        assert os.path.getsize(os.path.join(artifacts, "stdout")) > 0 and os.listdir(
            os.path.join(artifacts, "job_events")
        )
        leaked = [path for path in files_containing(artifacts, TOKEN) if os.path.basename(path) != "command"]
        assert not leaked, "the token is in what AWX shows of the job: %s" % leaked

        # An inventory update is 'ansible-inventory --list --export', stored as it is.
        out, err = ansible_runner.get_inventory(
            action="list",
            inventories=[os.path.join(project, "fleet.hzel.yml")],
            envvars=envvars,
            export=True,
            quiet=True,
        )
        inventory = out if isinstance(out, dict) else json.loads(out)
        hosts = inventory["hzel"]["hosts"]
        print("inventory update: hosts=%s" % hosts)
        assert hosts == ["awx-batch", "awx-web-1", "awx-web-2"], (hosts, err)
        # Ordinary values arrive as plain strings and numbers, not as {"__ansible_unsafe": ...} objects.
        web = inventory["_meta"]["hostvars"]["awx-web-1"]
        assert web["hzel_state"] == "running" and web["hzel_hostname"] == "awx-web-1", web
        assert web["hzel_cpu_cores"] == 2 and isinstance(web["hzel_id"], str), web
        assert "__ansible_unsafe" not in json.dumps(inventory), inventory["_meta"]["hostvars"]
    print("hzel_awx: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
