# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ansible-builder v3 definitions of the 'ee' stage, written into a work folder.

Usage: definitions.py ROOT BASE_IMAGE TARBALL OUT
       definitions.py --content-hash TARBALL
- OUT/ee/execution-environment.yml: an execution environment with hzel.cloud installed from TARBALL; its
  Python and system needs come from the collection's own meta/execution-environment.yml (ansible-builder's
  introspection reads it), ansible-core and ansible-runner from the package index (the pins of
  tests/requirements-eda.txt).
- OUT/de/decision-environment.yml: meta/decision-environment.yml as shipped, with hzel.cloud from TARBALL.
Both override only what a Debian base needs: the base image, the Python path, the package manager
(apt-install in the base image), pip already present, and for the decision environment Debian's Java 17
runtime.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tarfile
from pathlib import Path

import yaml

DEBIAN_OPTIONS = {"package_manager_path": "/usr/local/bin/apt-install", "skip_pip_install": True}
# Java at run time only: not in the builder stage (the compile profile)
DEBIAN_JAVA = "openjdk-17-jre-headless [platform:dpkg !compile]"
DEBIAN_JAVA_HOME = "ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64"


# What an image's tag does not depend on: files that nothing inside the image reads (the tests, the docs, the
# changelog fragments) and the manifests that list their checksums; so the images stay cached across changes there.
NOT_IN_TAG = ("tests/", "docs/", "changelogs/", "MANIFEST.json", "FILES.json")


def content_hash(tarball: str) -> str:
    """A hash of the collection's files in TARBALL that the images use (names and contents)."""
    digest = hashlib.sha256()
    with tarfile.open(tarball) as archive:
        for member in sorted(archive.getmembers(), key=lambda member: member.name):
            if not member.isfile() or member.name.startswith(NOT_IN_TAG):
                continue
            digest.update(member.name.encode() + b"\0" + archive.extractfile(member).read() + b"\0")
    return digest.hexdigest()


def pin(requirements: Path, name: str) -> str:
    for line in requirements.read_text().splitlines():
        if re.match(r"^%s==" % re.escape(name), line.strip(), re.IGNORECASE):
            return line.strip()
    raise SystemExit("no pin of %s in %s" % (name, requirements))


def from_tarball(definition: dict, tarball: Path) -> None:
    definition.setdefault("additional_build_files", []).append({"src": str(tarball), "dest": "collections"})
    definition["dependencies"]["galaxy"] = {
        "collections": [{"name": "/build/collections/%s" % tarball.name, "type": "file"}]
    }


def main(root: str, base_image: str, tarball: str, out: str) -> None:
    rootdir, tar, outdir = Path(root), Path(tarball).resolve(), Path(out)
    own = yaml.safe_load((rootdir / "meta" / "execution-environment.yml").read_text())
    if own.get("version") != 1 or "python" not in own.get("dependencies", {}):
        raise SystemExit("meta/execution-environment.yml is not the collection-level (version 1) definition")
    ee = {
        "version": 3,
        "images": {"base_image": {"name": base_image}},
        "dependencies": {
            "python_interpreter": {"python_path": "/usr/bin/python3"},
            "ansible_core": {"package_pip": pin(rootdir / "tests" / "requirements-eda.txt", "ansible-core")},
            "ansible_runner": {"package_pip": pin(rootdir / "tests" / "requirements-eda.txt", "ansible-runner")},
        },
        "options": dict(DEBIAN_OPTIONS),
    }
    from_tarball(ee, tar)

    de = yaml.safe_load((rootdir / "meta" / "decision-environment.yml").read_text())
    de["images"]["base_image"]["name"] = base_image
    de["dependencies"]["python_interpreter"] = {"python_path": "/usr/bin/python3"}
    de["dependencies"]["system"] = list(de["dependencies"].get("system", [])) + [DEBIAN_JAVA]
    steps = de.setdefault("additional_build_steps", {})
    steps["append_final"] = [
        DEBIAN_JAVA_HOME if step.startswith("ENV JAVA_HOME=") else step for step in steps.get("append_final", [])
    ]
    de.setdefault("options", {}).update(DEBIAN_OPTIONS)
    from_tarball(de, tar)

    for name, definition in (("ee/execution-environment.yml", ee), ("de/decision-environment.yml", de)):
        path = outdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("---\n" + yaml.safe_dump(definition, sort_keys=False))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--content-hash":
        print(content_hash(sys.argv[2]))
        sys.exit(0)
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
