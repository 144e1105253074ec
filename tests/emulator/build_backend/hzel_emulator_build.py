# Copyright: hzel.cloud contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The emulator's build backend (PEP 517), from the standard library alone.

pip install ./tests/emulator then needs no build tools, from the network or elsewhere: the wheel holds
the hzel_emulator package, its metadata from pyproject.toml and the hzel-emulator command. The
emulator's dependencies are installed by pip as for any package.
"""

import base64
import hashlib
import io
import os
import tarfile
import zipfile

import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "hzel_emulator"
# Fixed file times: the same sources make the same wheel.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)["project"]


def _base_name(project):
    return "%s-%s" % (project["name"].replace("-", "_"), project["version"])


def _metadata(project):
    lines = [
        "Metadata-Version: 2.1",
        "Name: %s" % project["name"],
        "Version: %s" % project["version"],
        "Summary: %s" % project["description"],
        "License: %s" % project["license"]["text"],
        "Requires-Python: %s" % project["requires-python"],
    ]
    lines += ["Requires-Dist: %s" % requirement for requirement in project.get("dependencies", [])]
    with open(os.path.join(ROOT, project["readme"]), encoding="utf-8") as handle:
        readme = handle.read()
    lines += ["Description-Content-Type: text/markdown", "", readme]
    return "\n".join(lines).encode()


def _package_files():
    """The package's Python files, as (path inside the archive, path on disk)."""
    found = []
    for base, dirs, files in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = sorted(name for name in dirs if name != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(base, name)
                found.append((os.path.relpath(path, ROOT).replace(os.sep, "/"), path))
    return found


WHEEL = b"Wheel-Version: 1.0\nGenerator: hzel_emulator_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _dist_info(project):
    info = _base_name(project) + ".dist-info"
    scripts = "".join("%s = %s\n" % item for item in sorted(project.get("scripts", {}).items()))
    return [
        (info + "/METADATA", _metadata(project)),
        (info + "/WHEEL", WHEEL),
        (info + "/entry_points.txt", ("[console_scripts]\n" + scripts).encode()),
    ]


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    entries = []
    for name, path in _package_files():
        with open(path, "rb") as handle:
            entries.append((name, handle.read()))
    entries += _dist_info(project)
    record_name = _base_name(project) + ".dist-info/RECORD"
    record = []
    for name, data in entries:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    record.append(record_name + ",,")
    entries.append((record_name, ("\n".join(record) + "\n").encode()))
    wheel_name = _base_name(project) + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries:
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(info, data)
    return wheel_name


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    top = _base_name(project)
    sources = [("pyproject.toml", os.path.join(ROOT, "pyproject.toml"))]
    sources.append((project["readme"], os.path.join(ROOT, project["readme"])))
    sources.append(("build_backend/hzel_emulator_build.py", os.path.abspath(__file__)))
    sources += _package_files()
    sdist_name = top + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, sdist_name), "w:gz", format=tarfile.PAX_FORMAT) as sdist:
        for name, data in [("PKG-INFO", _metadata(project))] + [
            (name, open(path, "rb").read()) for name, path in sources
        ]:
            info = tarfile.TarInfo("%s/%s" % (top, name))
            info.size, info.mode, info.mtime = len(data), 0o644, 1577836800
            sdist.addfile(info, io.BytesIO(data))
    return sdist_name
