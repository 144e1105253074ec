"""Write a Sphinx inventory (objects.inv) of the ansible-core documentation targets the docsite links to.

The collection's pages refer to ansible-core's configuration settings (environment variables such as
ANSIBLE_CACHE_PLUGIN) and to a few of its pages by label. Sphinx resolves them through an inventory that
it normally downloads; this one is made from the installed ansible-core, so the build is offline.
"""

import sys
import zlib

from ansible import constants

BASE = "reference_appendices/config.html"
LABELS = {
    "ansible_configuration_settings": (BASE + "#ansible-configuration-settings", "Ansible Configuration Settings"),
    "common_return_values": ("reference_appendices/common_return_values.html#common-return-values", "Return Values"),
    "ansible_collections.ansible.builtin.wait_for_connection_module": (
        "collections/ansible/builtin/wait_for_connection_module.html#ansible-collections-ansible-builtin-wait-for-connection-module",
        "ansible.builtin.wait_for_connection module",
    ),
}


def entries():
    for label, (uri, title) in sorted(LABELS.items()):
        yield "%s std:label -1 %s %s" % (label, uri, title)
    names = set()
    for setting in constants.config.get_configuration_definitions().values():
        for env in setting.get("env") or []:
            names.add(env["name"])
    for plugin_type in ("cache", "inventory", "callback", "connection", "lookup", "become", "shell", "vars"):
        for plugin in constants.config.get_configuration_definitions(plugin_type).values():
            for setting in plugin.values():
                for env in setting.get("env") or []:
                    names.add(env["name"])
    for name in sorted(names):
        yield "%s std:envvar 1 %s#envvar-$ -" % (name, BASE)


def main(path):
    header = (
        b"# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n"
        b"# The remainder of this file is compressed using zlib.\n"
    )
    body = "\n".join(entries()).encode("utf-8") + b"\n"
    with open(path, "wb") as handle:
        handle.write(header + zlib.compress(body))


if __name__ == "__main__":
    main(sys.argv[1])
