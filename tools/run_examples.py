"""Run every example a reader can copy, in the order a reader meets them, against one emulator.

Usage: run_examples.py --emulator URL --work DIR [--core-bin DIR] [--eda-bin DIR] [--only KIND ...]

The examples are read from the files themselves: the fenced blocks of README.md, the role's README and
docs/*.md, the code blocks of the docsite guides (docs/docsite/rst/*.rst), the EXAMPLES of every module, of the
inventory plugin (each YAML document an inventory source), of both filters and of the event source, and the
usage line at the top of every playbook and example file. tests/examples/config.yml holds the one table of
values that only a reader has (substitutions), and tests/examples/not_runnable.yml the examples that cannot run,
each with its reason; both are printed. An example that converges something runs twice and its second run must
change nothing; no two examples may give one hostname different specs (the API has no update nor delete).
Prints one line per example and `N examples: P passed, F failed, M marked not runnable` (and how many run in
another stage, the ee stage's execution environment); exits 1 on any
failure or conflict.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "tests", "examples", "config.yml")
NOT_RUNNABLE = os.path.join(ROOT, "tests", "examples", "not_runnable.yml")
# The first line of a docsite page that tests/eda/docs_pages.py writes from other files.
GENERATED = ".. Written by tests/eda/docs_pages.py --write"
TOKEN = "hzel-demo-token"
DEFAULT_SPEC = {"cpu_cores": 1, "memory_mb": 512, "disk_gb": 18}
SPEC_FIELDS = tuple(DEFAULT_SPEC)
# How long a run may take before it counts as hung; no check is about time.
GUARD = 300
# How long a rulebook runs: long enough to start and make its first poll, shorter than any interval shown.
RULEBOOK_SECONDS = 12
MD_BLOCK = re.compile(r"^( *)```([\w-]*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
RST_BLOCK = re.compile(r"^( *)\.\. code-block:: *([\w-]+)\n")
RECAP = re.compile(r"^(\S+) +: ok=\d+ +changed=(\d+) +unreachable=(\d+) +failed=(\d+)", re.MULTILINE)
TASK_HEADER = re.compile(r"^TASK \[(?:[^\]]* : )?(.*?)\] \**$", re.MULTILINE)
COMMANDS = (
    "ansible-playbook",
    "ansible-inventory",
    "ansible-rulebook",
    "ansible-galaxy",
    "ansible-doc",
    "export",
    "mkdir",
    "ln",
    "make",
    "ansible-builder",
)


class Example:
    """One example: where it is, what it is, and how it ran."""

    def __init__(self, source, title, kind, text, **extra):
        self.source = source
        self.title = title
        self.kind = kind  # tasks, playbook, inventory, rulebook, command, file, ee
        self.text = text
        self.extra = extra
        self.result = None  # pass, FAIL, not runnable
        self.detail = ""

    @property
    def key(self):
        return "%s: %s" % (self.source, self.title)


# --- reading the examples from their files ----------------------------------------------------------------------
def markdown_blocks(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        text = handle.read()
    for match in MD_BLOCK.finditer(text):
        indent = len(match.group(1))
        body = "".join(line[indent:] if line[:indent].isspace() else line for line in match.group(3).splitlines(True))
        yield match.group(2), body


def rst_blocks(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    index = 0
    while index < len(lines):
        match = RST_BLOCK.match(lines[index] + "\n")
        index += 1
        if not match:
            continue
        body = []
        while index < len(lines) and (not lines[index].strip() or lines[index].startswith(match.group(1) + " ")):
            body.append(lines[index])
            index += 1
        if not any(line.strip() for line in body):
            continue
        width = min(len(line) - len(line.lstrip()) for line in body if line.strip())
        yield match.group(2), "\n".join(line[width:] for line in body).strip("\n") + "\n"


def python_constant(path, name):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(target, "id", None) == name for target in node.targets):
            return node.value.value
    raise SystemExit("%s has no %s" % (path, name))


def shell_commands(body):
    """The commands of a sh or console block: continuation lines joined, prompts and comments dropped."""
    commands, current = [], ""
    for line in body.splitlines():
        line = line.rstrip()
        if line.startswith("$ "):
            line = line[2:]
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if line.endswith("\\"):
            continue
        command = re.sub(r"\s+#.*$", "", current).strip()
        current = ""
        if command and not command.startswith("#"):
            commands.append(re.sub(r"\s+", " ", command))
    return commands


def usage_line(path):
    """The command in a playbook's or example file's leading comments, without its optional [...] parts."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("---"):
                continue
            if not line.startswith("#"):
                return None
            match = re.match(r"#\s+((?:ansible-playbook|ansible-inventory) .*)", line)
            if match:
                command, previous = match.group(1), None
                while command != previous:
                    previous, command = command, re.sub(r"\[[^\[\]]*\]", "", command)
                command = re.sub(r"\s\(.*\)\s*$", "", command)
                return re.sub(r"\s+", " ", command).strip()
    return None


def shipped_file(body):
    """The example file (examples/*.yml) of which a block without a marker is a verbatim excerpt, if any."""
    for name in sorted(os.listdir(os.path.join(ROOT, "examples"))):
        path = os.path.join("examples", name)
        if name.endswith(".yml"):
            with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
                if body.strip() and body.strip() in handle.read():
                    return path
    return None


def classify(source, lang, body, number):
    """The examples of one code block."""
    if lang in ("sh", "console", "bash", "shell"):
        return [Example(source, command, "command", command) for command in shell_commands(body)]
    if lang not in ("yaml", "yml"):
        return []  # output (text), not something to run
    first = body.splitlines()[0] if body.strip() else ""
    marker = re.match(r"# (\S+)$", first)
    if marker and os.path.isfile(os.path.join(ROOT, marker.group(1))):
        return [Example(source, marker.group(1), "file", body, path=marker.group(1))]
    shipped = shipped_file(body)
    if shipped:
        return [Example(source, shipped, "file", body, path=shipped)]
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError as error:
        title = re.search(r"name: (.*)", body)
        return [
            Example(
                source,
                title.group(1) if title else "block %d" % number,
                "invalid",
                body,
                error=" ".join(str(error).split()),
            )
        ]
    if isinstance(data, dict) and "plugin" in data:
        named = re.match(r"# (\S*hzel\.yml)\b", first)
        name = named.group(1) if named else None
        return [Example(source, name or "inventory %d" % number, "inventory", body, filename=name)]
    if isinstance(data, dict) and "dependencies" in data and "version" in data:
        name = re.match(r"# (\S+)", first)
        return [Example(source, name.group(1) if name else "execution environment %d" % number, "ee", body)]
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        if all("sources" in item for item in data):
            return [Example(source, data[0].get("name", "rulebook %d" % number), "rulebook", body)]
        if all("hosts" in item or any(key.endswith("import_playbook") for key in item) for item in data):
            return [Example(source, data[0].get("name", "playbook %d" % number), "playbook", body)]
        return [Example(source, "tasks %d" % number, "tasks", body)]
    raise SystemExit("%s: cannot tell what the YAML block %d is" % (source, number))


def collect():
    """Every example in the order a reader meets them: the README, the guides, then the plugin docs."""
    examples = []
    documents = ["README.md", "roles/hzel_fleet/README.md"] + sorted(
        os.path.join("docs", name) for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md")
    )
    for document in documents:
        for number, (lang, body) in enumerate(markdown_blocks(document), 1):
            examples += classify(document, lang, body, number)
    guides = os.path.join("docs", "docsite", "rst")
    for name in sorted(os.listdir(os.path.join(ROOT, guides))):
        with open(os.path.join(ROOT, guides, name), encoding="utf-8") as handle:
            if handle.readline().startswith(GENERATED):
                # A page written from the rulebooks, playbooks and event source (tests/eda/docs_pages.py, which
                # checks it matches them): they run from those files (the playbooks' usage lines and the source's
                # EXAMPLES here, the rulebooks in the eda stage).
                continue
        for number, (lang, body) in enumerate(rst_blocks(os.path.join(guides, name)), 1):
            examples += classify(os.path.join(guides, name), lang, body, number)
    for directory in ("plugins/modules", "plugins/filter"):
        for name in sorted(os.listdir(os.path.join(ROOT, directory))):
            path = os.path.join(directory, name)
            if name.endswith(".py") and directory == "plugins/modules":
                examples.append(Example(path, "EXAMPLES", "tasks", python_constant(path, "EXAMPLES")))
            elif name.endswith(".yml"):
                with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
                    examples.append(Example(path, "EXAMPLES", "tasks", yaml.safe_load(handle)["EXAMPLES"]))
    inventory = "plugins/inventory/hzel.py"
    for number, document in enumerate(python_constant(inventory, "EXAMPLES").split("\n---\n")[1:], 1):
        document = document.strip("\n") + "\n"
        first = re.match(r"# (\S+\.hzel\.yml)(?: - .*?(?:: (ansible-inventory .*))?)?$", document.splitlines()[0])
        name = first.group(1) if first else "inventory %d" % number
        examples.append(
            Example(
                inventory,
                name,
                "inventory",
                document,
                filename=first and first.group(1),
                command=first and first.group(2),
            )
        )
    source = "extensions/eda/plugins/event_source/hzel_events.py"
    examples.append(Example(source, "EXAMPLES", "rulebook", python_constant(source, "EXAMPLES")))
    for directory in ("playbooks", "examples"):
        for name in sorted(os.listdir(os.path.join(ROOT, directory))):
            path = os.path.join(directory, name)
            command = name.endswith(".yml") and usage_line(path)
            if command and not any(example.extra.get("path") == path for example in examples):
                examples.append(Example(path, command, "command", command))
    return examples


# --- the emulator and substitutions -----------------------------------------------------------------------------
class Emulator:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def containers(self):
        request = urllib.request.Request(self.url + "/api/v1/containers", headers={"Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.load(reply)["data"]

    def id_of(self, hostname):
        for container in self.containers():
            if container["hostname"] == hostname:
                return container["id"]
        raise LookupError("no container %s for the substitution {id:%s}" % (hostname, hostname))


def substitute(text, table, values, emulator):
    def value(template):
        template = re.sub(r"\{id:([a-z0-9-]+)\}", lambda match: emulator.id_of(match.group(1)), template)
        return template.format(**values)

    for literal in sorted(table, key=len, reverse=True):
        pattern = r"(?<![\w/.-])%s(?![\w/-])" % re.escape(literal)
        if re.search(pattern, text):
            replacement = value(table[literal])
            text = re.sub(pattern, lambda _match, replacement=replacement: replacement, text)
    return text


# --- running ----------------------------------------------------------------------------------------------------
class Runner:
    def __init__(self, options, config):
        self.options = options
        self.config = config
        self.work = os.path.abspath(options.work)
        self.emulator = Emulator(options.emulator)
        self.values = {"url": self.emulator.url, "token": TOKEN, "work": self.work}
        self.env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "HZEL_"))}
        self.env.update(
            HOME=os.path.join(self.work, "home"),
            PATH=os.pathsep.join([options.core_bin, options.eda_bin, os.environ["PATH"]]),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_LOCALHOST_WARNING="false",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
            # What `make serve` prints to reach the running containers through its SSH gateway.
            ANSIBLE_REMOTE_PORT=options.ssh_port,
            ANSIBLE_PRIVATE_KEY_FILE=options.ssh_key,
            ANSIBLE_SSH_COMMON_ARGS="-o IdentitiesOnly=yes -o UserKnownHostsFile=%s" % options.ssh_known_hosts,
        )
        self.clone = os.path.join(self.work, "clone")
        self.count = 0
        self.seen_files = set()
        self.commands_run = {}
        self.rulebooks = []

    def prepare(self):
        """A copy of the repository's files as a clone holds them, with the files a reader writes: what the
        examples write (report.txt, fleet.yml) lands in it, never in the repository."""
        os.makedirs(self.env["HOME"], exist_ok=True)
        listed = subprocess.run(
            ["git", "-C", ROOT, "ls-files", "-z", "-c", "-o", "--exclude-standard"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split("\0")
        for name in listed:
            source = os.path.join(ROOT, name)
            if name and os.path.isfile(source) and not os.path.islink(source):
                os.makedirs(os.path.dirname(os.path.join(self.clone, name)), exist_ok=True)
                shutil.copy2(source, os.path.join(self.clone, name))
        for name, content in self.config.get("files", {}).items():
            with open(os.path.join(self.clone, name), "w", encoding="utf-8") as handle:
                handle.write(content)

    def scratch(self, name):
        self.count += 1
        return os.path.join(self.clone, "_example-%02d-%s" % (self.count, name))

    def run(self, command, timeout=GUARD):
        try:
            done = subprocess.run(
                command,
                cwd=self.clone,
                env=self.env,
                stdin=subprocess.DEVNULL,
                text=True,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            return done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as error:
            return -1, "%s\n(stopped after %ds)" % (error.stdout or "", timeout)

    # Each of these returns (passed, message).
    def run_playbook_twice(self, example, command, converges):
        code, output = self.run(command)
        if code != 0 or not RECAP.search(output):
            return False, failure_of(output)
        if not converges:
            return True, ""
        code, output = self.run(command)
        if code != 0:
            return False, "second run: " + failure_of(output)
        changed = [found[0] for found in RECAP.findall(output) if found[1] != "0"]
        # A task in check mode reports what it would change, on every run.
        tasks = [name for name in changed_tasks(output) if name not in self.check_mode_tasks(command)]
        if changed and tasks:
            return False, "second run changed something on %s: %s" % (", ".join(changed), "; ".join(tasks))
        return True, "second run unchanged"

    def check_mode_tasks(self, command):
        names = set()

        def walk(node):
            if isinstance(node, list):
                for item in node:
                    walk(item)
            elif isinstance(node, dict):
                if node.get("check_mode") is True and "name" in node:
                    names.add(node["name"])
                for value in node.values():
                    walk(value)

        for argument in command:
            path = os.path.join(self.clone, argument)
            if argument.endswith(".yml") and os.path.isfile(path):
                with open(path, encoding="utf-8") as handle:
                    walk(yaml.safe_load(handle))
        return names

    def run_tasks(self, example):
        """A block of tasks: in a play on localhost (or the hosts the config names), each task on its own."""
        tasks = yaml.safe_load(self.substitute(example.text))
        wanted = []
        for task in tasks:
            key = "%s: %s" % (example.source, task.get("name"))
            if key in self.not_runnable:
                continue
            task = dict(task)
            task.setdefault("ignore_errors", True)
            wanted.append((self.config.get("task_hosts", {}).get(key, "localhost"), task))
        plays = []
        for hosts, task in wanted:
            if not plays or plays[-1]["hosts"] != hosts:
                plays.append(
                    {"name": "Examples of %s" % example.source, "hosts": hosts, "gather_facts": False, "tasks": []}
                )
            plays[-1]["tasks"].append(task)
        inventory = self.scratch("tasks.hzel.yml")
        with open(inventory, "w", encoding="utf-8") as handle:
            handle.write(self.config["task_inventory"])
        playbook = self.scratch("tasks.yml")
        with open(playbook, "w", encoding="utf-8") as handle:
            yaml.safe_dump(plays, handle, sort_keys=False)
        command = ["ansible-playbook", "-i", inventory, playbook]
        first = self.run(command)
        second = self.run(command)
        results = []
        for _hosts, task in wanted:
            name = task.get("name")
            names = [inner.get("name") for inner in task["block"]] if "block" in task else [name]
            once, again = task_outcome(first[1], names), task_outcome(second[1], names)
            restarts = "restarted" in json.dumps(task) or name in self.config.get("always_change", {})
            if once is None:
                results.append((name, False, "did not run: " + failure_of(first[1])))
            elif once[0] == "failed":
                results.append((name, False, once[1]))
            elif again is None or again[0] == "failed":
                results.append((name, False, "second run: " + (again[1] if again else failure_of(second[1]))))
            elif again[0] == "changed" and not restarts and not task.get("check_mode"):
                results.append((name, False, "second run changed something"))
            else:
                results.append((name, True, ""))
        return results

    def run_inventory(self, example):
        name = os.path.basename(example.extra.get("filename") or "example.hzel.yml")
        path = self.scratch(name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(example.text)
        command = example.extra.get("command")
        if command:
            command = self.substitute(command)
            argv = shlex.split(command)
            argv[argv.index("-i") + 1] = path
            if "--list" not in argv and "--graph" not in argv:
                argv.append("--list")
        else:
            argv = ["ansible-inventory", "-i", path, "--list"]
        return self.check_inventory(argv)

    def check_inventory(self, argv):
        self.env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "true"
        try:
            code, output = self.run(argv)
        finally:
            del self.env["ANSIBLE_INVENTORY_UNPARSED_FAILED"]
        if code != 0:
            return False, failure_of(output)
        if "--list" in argv:
            hosts = json.loads(output[output.index("{") :])["_meta"]["hostvars"]
            if not hosts:
                return False, "no hosts"
            return True, "%d hosts" % len(hosts)
        return True, ""

    def run_rulebook(self, argv):
        """ansible-rulebook for a few seconds, beside the examples that follow: it must start, poll, and still be
        running when it is stopped (finish_rulebooks)."""
        log = open(self.scratch("rulebook.log"), "w+", encoding="utf-8")
        process = subprocess.Popen(
            argv,
            cwd=self.clone,
            env=dict(self.env),
            stdin=subprocess.DEVNULL,
            text=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.rulebooks.append((process, log, time.monotonic()))
        return None, process

    def finish_rulebook(self, process, log, started):
        try:
            process.wait(timeout=max(0, RULEBOOK_SECONDS - (time.monotonic() - started)))
            log.seek(0)
            return False, "ended by itself (exit %s): %s" % (process.returncode, failure_of(log.read()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.seek(0)
        output = log.read()
        if re.search(r"Traceback|ERROR|Terminating|error", output):
            return False, failure_of(output)
        return True, "ran %ds" % RULEBOOK_SECONDS

    def run_command(self, example, command):
        """A command as a reader types it; the same command met again (a usage line that a README block repeats)
        is the same example and is not run a second time."""
        if command in self.commands_run:
            passed, detail = self.commands_run[command]
            if passed is None:  # a rulebook still running
                return passed, detail
            return passed, (detail + "; " if detail else "") + "as run above"
        self.commands_run[command] = self.run_new_command(example, command)
        return self.commands_run[command]

    def run_new_command(self, example, command):
        argv = shlex.split(command)
        if argv[0] == "export":
            for assignment in argv[1:]:
                name, value = assignment.split("=", 1) if "=" in assignment else (assignment, "")
                self.env[name] = os.path.expandvars(value.replace("$PWD", self.clone))
            return True, ""
        if argv[0] == "ansible-rulebook":
            return self.run_rulebook(argv)
        if argv[0] == "ansible-inventory":
            return self.check_inventory(argv)
        if argv[0] == "ansible-playbook":
            converges = example.key not in self.config.get("always_change", {})
            return self.run_playbook_twice(example, argv, converges)
        code, output = self.run(["bash", "-c", command])
        return (code == 0), failure_of(output) if code else ""

    def substitute(self, text):
        return substitute(text, self.config["substitutions"], self.values, self.emulator)

    def run_example(self, example):
        text = self.substitute(example.text)
        extra = (
            self.config.get("arguments", {}).get(example.key)
            or self.config.get("arguments", {}).get(example.title)
            or []
        )
        if example.kind == "command":
            return self.run_command(example, text)
        if example.kind == "inventory":
            example.text = text
            return self.run_inventory(example)
        if example.kind == "file":
            path = example.extra["path"]
            with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
                content = handle.read()
            data = yaml.safe_load(content)
            if isinstance(data, list) and data and isinstance(data[0], dict) and "sources" in data[0]:
                return self.run_rulebook(["ansible-rulebook", "-r", path] + extra)
            command = usage_line(path)
            if not command:
                return False, "%s has no usage line (# ansible-playbook ...) to run it by" % path
            return self.run_command(example, self.substitute(command))
        if example.kind == "invalid":
            return False, "not valid YAML: " + example.extra["error"]
        if example.kind in ("playbook", "rulebook", "ee"):
            path = self.scratch("%s.yml" % example.kind)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            if example.kind == "rulebook":
                return self.run_rulebook(["ansible-rulebook", "-r", path, "-i", "localhost.ini"] + extra)
            if example.kind == "ee":
                code, output = self.run(["ansible-builder", "create", "-f", path, "-c", path + ".context"])
                return code == 0, failure_of(output) if code else "ansible-builder create"
            return self.run_playbook_twice(example, ["ansible-playbook", path] + extra, True)
        raise AssertionError(example.kind)


def task_outcome(output, names):
    """('ok' | 'changed' | 'failed' | 'skipped', message) of the tasks of those names (one, or the tasks of a block)
    in a default-callback output: the first failure, else changed if one changed."""
    outcomes = [outcome for outcome in (one_task_outcome(output, name) for name in names) if outcome]
    if len(outcomes) < len(names):
        return None
    for state in ("failed", "changed", "ok"):
        for outcome in outcomes:
            if outcome[0] == state:
                return outcome
    return outcomes[0]


def one_task_outcome(output, name):
    headers = list(TASK_HEADER.finditer(output))
    for index, header in enumerate(headers):
        if header.group(1) != name:
            continue
        end = headers[index + 1].start() if index + 1 < len(headers) else output.find("PLAY RECAP")
        body = output[header.end() : end]
        if re.search(r"^(fatal|failed): ", body, re.MULTILINE):
            return "failed", failure_of(body)
        if re.search(r"^changed: ", body, re.MULTILINE):
            return "changed", ""
        if re.search(r"^ok: ", body, re.MULTILINE):
            return "ok", ""
        return "skipped", ""
    return None


def changed_tasks(output):
    headers = list(TASK_HEADER.finditer(output))
    names = []
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(output)
        if re.search(r"^changed: ", output[header.end() : end], re.MULTILINE):
            names.append(header.group(1))
    return names


def failure_of(output):
    """The line that says what went wrong, bounded."""
    caused = re.search(r"<<< caused by >>>\s*\n(.+)", output)
    if caused:
        return caused.group(1).strip()[:400]
    for pattern in (
        r'"msg": "((?:[^"\\]|\\.)*)"',
        r"^(?:ERROR|\[ERROR\]).*$",
        r"^fatal: .*$",
        r"^.*(?:Error|error).*$",
    ):
        match = re.search(pattern, output, re.MULTILINE)
        if match:
            text = match.group(1) if match.groups() else match.group(0)
            return text.strip()[:400]
    return output.strip().splitlines()[-1][:400] if output.strip() else "(no output)"


# --- hostnames and specs ----------------------------------------------------------------------------------------
def mentions(example, text):
    """(hostname, given spec, creates) for each container an example names with a literal hostname."""
    found = []
    check = "--check" in text

    def walk(node, in_check):
        if isinstance(node, list):
            for item in node:
                walk(item, in_check)
        elif isinstance(node, dict):
            in_check = in_check or node.get("check_mode") is True
            hostname = node.get("hostname")
            spec = {field: node[field] for field in SPEC_FIELDS if isinstance(node.get(field), int)}
            if isinstance(hostname, str) and re.fullmatch(r"[a-z][a-z0-9-]*", hostname):
                found.append((hostname, spec, not in_check and node.get("state") != "restarted"))
            pattern, count = node.get("hostname_pattern"), node.get("count")
            if isinstance(pattern, str) and isinstance(count, int):
                found.extend(group(pattern, count, node.get("index_start", 1), spec, not in_check))
            for value in node.values():
                walk(value, in_check)

    try:
        walk(list(yaml.safe_load_all(text)), False)
    except yaml.YAMLError:
        pass
    if example.kind == "command":
        arguments = dict(re.findall(r"-e (hzel_scale_\w+)=(\S+)", text))
        if "hzel_scale_pattern" in arguments and arguments.get("hzel_scale_count", "").isdigit():
            spec = {
                field: int(arguments["hzel_scale_" + field])
                for field in SPEC_FIELDS
                if arguments.get("hzel_scale_" + field, "").isdigit()
            }
            found.extend(
                group(
                    arguments["hzel_scale_pattern"],
                    int(arguments["hzel_scale_count"]),
                    int(arguments.get("hzel_scale_index_start", "1")),
                    spec,
                    not check,
                )
            )
        for path in re.findall(r"(?:-e @|--vars )(\S+)", text):
            if os.path.isfile(os.path.join(ROOT, path)):
                with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
                    found.extend(
                        (hostname, spec, creates and not check)
                        for hostname, spec, creates in mentions(Example("", "", "vars", ""), handle.read())
                    )
    return found


def group(pattern, count, start, spec, creates):
    return [
        (pattern.replace("{index}", str(index)).replace("{index:02d}", "%02d" % index), spec, creates)
        for index in range(start, start + count)
    ]


def conflicts(examples, table, values, not_runnable):
    """Reading in order, a hostname first created takes its spec (defaults for what is not given); a later
    example that gives it another value for a field is a conflict."""
    created, problems = {}, []
    offline = Emulator("http://unused")
    offline.id_of = lambda hostname: "00000000-0000-0000-0000-000000000000"
    for example in examples:
        text = example.text
        if example.kind == "file":
            with open(os.path.join(ROOT, example.extra["path"]), encoding="utf-8") as handle:
                text = handle.read()
            example = Example(example.source, example.title, "command", text)
            text = text + "\n# " + (usage_line(example.title) or "")
        text = substitute(text, table, values, offline)
        if example.kind == "tasks":
            parts = [
                (Example(example.source, task.get("name"), "tasks", ""), yaml.safe_dump([task]))
                for task in yaml.safe_load(text)
            ]
        else:
            parts = [(example, text)]
        for part, part_text in parts:
            problems.extend(spec_conflicts(part, part_text, created, not_runnable))
    return problems


def spec_conflicts(example, text, created, not_runnable):
    problems = []
    for hostname, spec, creates in mentions(example, text):
        if hostname in created:
            first, where = created[hostname]
            differ = [
                "%s %s (not %s)" % (field, value, first[field])
                for field, value in spec.items()
                if first[field] != value
            ]
            if differ:
                problems.append(
                    (
                        "%s gives %s %s; %s created it first" % (example.key, hostname, ", ".join(differ), where),
                        example.key in not_runnable,
                    )
                )
        elif creates:
            created[hostname] = (dict(DEFAULT_SPEC, **spec), example.key)
    return problems


# --- main -------------------------------------------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--core-bin", required=True, help="bin folder of the ansible-core to run the examples with")
    parser.add_argument("--eda-bin", required=True, help="bin folder of ansible-rulebook")
    parser.add_argument("--ssh-port", required=True)
    parser.add_argument("--ssh-key", required=True)
    parser.add_argument("--ssh-known-hosts", required=True)
    parser.add_argument("--only", nargs="*", help="run only the examples whose source starts with one of these")
    parser.add_argument("--list", action="store_true", help="list the examples and exit")
    parser.add_argument("--timings", action="store_true", help="print how long each example took")
    options = parser.parse_args()
    with open(CONFIG, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    with open(NOT_RUNNABLE, encoding="utf-8") as handle:
        entries = yaml.safe_load(handle) or []
    examples = collect()
    if options.list:
        for example in examples:
            print("%-8s %s" % (example.kind, example.key))
        return 0
    runner = Runner(options, config)
    runner.prepare()
    version = subprocess.run(
        ["ansible", "--version"], env=runner.env, capture_output=True, text=True, check=False
    ).stdout
    # An entry with before_core (for example "2.19") holds only on cores older than that: the example says so.
    core = tuple(int(part) for part in re.search(r"core ([0-9]+)\.([0-9]+)", version).groups())
    not_runnable = {
        entry["example"]: entry["reason"]
        for entry in entries
        if "before_core" not in entry or core < tuple(int(part) for part in str(entry["before_core"]).split("."))
    }
    every_entry = {entry["example"] for entry in entries}
    # An entry with stage runs in that stage of the suite (the ee stage runs the AWX guide's project in an
    # execution environment): counted apart from the examples that do not run at all.
    elsewhere = {entry["example"]: entry["stage"] for entry in entries if "stage" in entry}
    runner.not_runnable = not_runnable
    print("examples on %s, against %s" % (version.splitlines()[0], runner.emulator.url))
    print("not runnable (%s):" % os.path.relpath(NOT_RUNNABLE, ROOT))
    for key, reason in not_runnable.items():
        print("  %s -- %s" % (key, reason))
    problems = conflicts(examples, config["substitutions"], runner.values, not_runnable)
    known = set()
    outcomes = []  # (key, result, detail)
    pending = {}  # a rulebook's process: the indexes of its outcomes
    for example in examples:
        if options.only and not example.source.startswith(tuple(options.only)):
            if example.kind == "command" and example.text.split()[0] in ("export", "mkdir", "ln"):
                runner.run_example(example)  # the reader's set-up (Install, Authenticate), not counted here
            continue
        if example.kind == "file":
            if example.extra["path"] in runner.seen_files:
                continue  # another excerpt of a file already run
            runner.seen_files.add(example.extra["path"])
        known.add(example.key)
        if example.key in not_runnable:
            outcomes.append((example.key, elsewhere.get(example.key, "not runnable"), not_runnable[example.key]))
        elif example.kind == "tasks":
            for name, passed, detail in runner.run_tasks(example):
                key = "%s: %s" % (example.source, name)
                known.add(key)
                outcomes.append((key, "pass" if passed else "FAIL", detail))
                print("%-5s %s%s" % (outcomes[-1][1], key, "  -- " + detail if detail else ""), flush=True)
            for task in yaml.safe_load(example.text):
                key = "%s: %s" % (example.source, task.get("name"))
                if key in not_runnable:
                    known.add(key)
                    outcomes.append((key, elsewhere.get(key, "not runnable"), not_runnable[key]))
            continue
        else:
            started = time.monotonic()
            try:
                passed, detail = runner.run_example(example)
            except Exception as error:  # noqa: BLE001 - one example's error is its failure, not the stage's
                passed, detail = False, "%s: %s" % (type(error).__name__, error)
            if passed is None:  # a rulebook, running beside the examples that follow
                pending.setdefault(detail, []).append(len(outcomes))
                outcomes.append((example.key, "running", ""))
                continue
            outcomes.append((example.key, "pass" if passed else "FAIL", detail))
            if options.timings:
                print("      %.1fs" % (time.monotonic() - started))
        print(
            "%-5s %s%s" % (outcomes[-1][1], example.key, "  -- " + outcomes[-1][2] if outcomes[-1][2] else ""),
            flush=True,
        )
    for process, log, started in runner.rulebooks:
        passed, detail = runner.finish_rulebook(process, log, started)
        for index in pending.get(process, []):
            outcomes[index] = (outcomes[index][0], "pass" if passed else "FAIL", detail)
            print("%-5s %s  -- %s" % (outcomes[index][1], outcomes[index][0], detail), flush=True)
    stale = [key for key in every_entry if key not in known and not options.only]
    for key in stale:
        print("not_runnable.yml names %s, which is no example (any more)" % key)
    for problem, known_defect in problems:
        print("CONFLICT %s%s" % (problem, " (marked not runnable)" if known_defect else ""))
    problems = [problem for problem, known_defect in problems if not known_defect]
    passed = sum(1 for outcome in outcomes if outcome[1] == "pass")
    failed = [outcome for outcome in outcomes if outcome[1] == "FAIL"]
    marked = sum(1 for outcome in outcomes if outcome[1] == "not runnable")
    for key, _result, detail in failed:
        print("failed: %s -- %s" % (key, detail))
    in_stages = ", ".join(
        "%d run by the %s stage" % (sum(1 for outcome in outcomes if outcome[1] == stage), stage)
        for stage in sorted(set(elsewhere.values()))
    )
    print(
        "%d examples: %d passed, %d failed, %d marked not runnable%s"
        % (len(outcomes), passed, len(failed), marked, ", " + in_stages if in_stages else "")
    )
    if problems:
        print("%d hostnames given different specs by two examples" % len(problems))
    return 1 if failed or problems or stale else 0


if __name__ == "__main__":
    sys.exit(main())
