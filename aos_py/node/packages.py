"""APM packages on disk: read and validate a package folder, and turn it into an APM.Publish message.

A package folder holds `manifest.json`, the main Lua file it names (default `main.lua`) and
optionally a readme (default `README.md`). The manifest looks like

    {"vendor": "@sam", "name": "Llama-Herder", "version": "1.0.3", "description": "...",
     "main": "main.lua", "readme": "README.md",
     "dependencies": {"@v/n": {"version": "x.y.z"}},
     "warnings": {"modifiesGlobalState": false, "installMessage": ""},
     "repository": "", "keywords": [], "authors": [{"name": "..."}], "license": "MIT"}

The packages that ship with aos-py live under `packages/<@vendor>/<name>/` (see
`aos_py.resources.packages_dir`); `shipped_packages()` reads them all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aos_py.node.ans104 import MAX_TAG_VALUE
from aos_py.resources import packages_dir

MANIFEST = "manifest.json"
VENDOR_RE = re.compile(r"^@[a-z0-9-]+$")
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
FULL_NAME_RE = re.compile(r"^(@[a-z0-9-]+)/([A-Za-z0-9_-]+)$")
AUTHOR_FIELDS = ("name", "address", "email", "url")


class PackageError(ValueError):
    """A package folder or manifest that cannot be published; the message names the file and field."""


@dataclass(frozen=True)
class Package:
    """A validated package: its manifest fields plus the main source and readme text."""

    path: Path
    vendor: str
    name: str
    version: str
    source: str
    description: str = ""
    main: str = "main.lua"
    readme: str = ""
    dependencies: dict[str, dict[str, str]] = field(default_factory=dict)
    warnings: dict[str, Any] = field(default_factory=lambda: {"modifiesGlobalState": False, "installMessage": ""})
    repository: str = ""
    keywords: list[str] = field(default_factory=list)
    authors: list[dict[str, str]] = field(default_factory=list)
    license: str = ""

    @property
    def full_name(self) -> str:
        """`@vendor/name`, the key the APM client installs the package under."""
        return f"{self.vendor}/{self.name}"

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        """The version as numbers, for ordering (1.10.0 is newer than 1.9.0)."""
        major, minor, patch = (int(p) for p in self.version.split("."))
        return major, minor, patch

    def publish_tags(self) -> list[tuple[str, str]]:
        """The tags of the APM.Publish message (JSON-valued tags as JSON text; empty ones left out)."""
        tags = [
            ("Action", "APM.Publish"),
            ("Name", self.name),
            ("Vendor", self.vendor),
            ("Version", self.version),
            ("Description", self.description),
            ("Keywords", json.dumps(self.keywords)),
            ("Repository", self.repository),
            ("Dependencies", json.dumps(self.dependencies, sort_keys=True)),
            ("Warnings", json.dumps(self.warnings, sort_keys=True)),
            ("Authors", json.dumps(self.authors)),
            ("License", self.license),
        ]
        return [(k, v) for k, v in tags if v]   # ANS-104 has no empty tag values; the registry defaults them

    def publish_data(self) -> str:
        """The Data of the APM.Publish message: JSON {source, readme} in plain text."""
        return json.dumps({"source": self.source, "readme": self.readme}, ensure_ascii=False)


def _fail(where: Path | str, what: str) -> PackageError:
    return PackageError(f"{where}: {what}")


def _string(manifest: dict, key: str, where: Path, default: str | None = None) -> str:
    value = manifest.get(key, default)
    if value is None:
        raise _fail(where, f"missing field {key!r}")
    if not isinstance(value, str):
        raise _fail(where, f"field {key!r} must be a string, not {type(value).__name__}")
    return value


def _dependencies(value: Any, where: Path) -> dict[str, dict[str, str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, 'field \'dependencies\' must be an object {"@vendor/name": {"version": "x.y.z"}}')
    out: dict[str, dict[str, str]] = {}
    for dep, spec in value.items():
        if not FULL_NAME_RE.match(dep):
            raise _fail(where, f"dependency {dep!r} is not a valid @vendor/name")
        if isinstance(spec, str):  # shorthand "x.y.z"
            spec = {"version": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("version"), str) \
                or not VERSION_RE.match(spec["version"]):
            raise _fail(where, f"dependency {dep!r} needs {{\"version\": \"x.y.z\"}}, got {spec!r}")
        out[dep] = {"version": spec["version"]}
    return out


def _warnings(value: Any, where: Path) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _fail(where, "field 'warnings' must be an object {modifiesGlobalState, installMessage}")
    modifies = value.get("modifiesGlobalState", False)
    message = value.get("installMessage", "")
    if not isinstance(modifies, bool):
        raise _fail(where, "field 'warnings.modifiesGlobalState' must be true or false")
    if not isinstance(message, str):
        raise _fail(where, "field 'warnings.installMessage' must be a string")
    return {"modifiesGlobalState": modifies, "installMessage": message}


def _keywords(value: Any, where: Path) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise _fail(where, "field 'keywords' must be a list of strings")
    return list(value)


def _authors(value: Any, where: Path) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, 'field \'authors\' must be a list of {"name": ..., "address": ..., ...}')
    out = []
    for i, author in enumerate(value):
        if isinstance(author, str):
            author = {"name": author}
        if not isinstance(author, dict) or not all(isinstance(v, str) for v in author.values()):
            raise _fail(where, f"field 'authors[{i}]' must be an object of strings or a name")
        unknown = set(author) - set(AUTHOR_FIELDS)
        if unknown:
            raise _fail(where, f"field 'authors[{i}]' has unknown keys {sorted(unknown)} (allowed: {AUTHOR_FIELDS})")
        out.append(dict(author))
    return out


def _package_file(directory: Path, manifest_path: Path, key: str, name: str) -> Path:
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise _fail(manifest_path, f"field {key!r} must be a file name inside the package folder, got {name!r}")
    return directory / name


def read_package(directory: str | Path) -> Package:
    """Read and validate the package in `directory`; raises PackageError naming the file and field at fault."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise _fail(manifest_path, "no such file (a package folder needs a manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(manifest_path, f"not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise _fail(manifest_path, "must hold a JSON object")

    vendor = _string(manifest, "vendor", manifest_path)
    if not VENDOR_RE.match(vendor):
        raise _fail(manifest_path, f"field 'vendor' {vendor!r} must match @[a-z0-9-]+ (lower case, leading @)")
    name = _string(manifest, "name", manifest_path)
    if not NAME_RE.match(name):
        raise _fail(manifest_path, f"field 'name' {name!r} must match [A-Za-z0-9_-]+")
    version = _string(manifest, "version", manifest_path)
    if not VERSION_RE.match(version):
        raise _fail(manifest_path, f"field 'version' {version!r} must be major.minor.patch, e.g. 1.0.0")

    main = _string(manifest, "main", manifest_path, "main.lua")
    main_path = _package_file(directory, manifest_path, "main", main)
    if not main_path.is_file():
        raise _fail(main_path, f"no such file (named by field 'main' of {manifest_path})")
    source = main_path.read_text(encoding="utf-8")
    if not source.strip():
        raise _fail(main_path, "the main file is empty")

    readme_name = manifest.get("readme")
    readme = ""
    if readme_name is not None:
        readme_name = _string(manifest, "readme", manifest_path)
        readme_path = _package_file(directory, manifest_path, "readme", readme_name)
        if not readme_path.is_file():
            raise _fail(readme_path, f"no such file (named by field 'readme' of {manifest_path})")
        readme = readme_path.read_text(encoding="utf-8")
    elif (directory / "README.md").is_file():
        readme = (directory / "README.md").read_text(encoding="utf-8")

    pkg = Package(
        path=directory,
        vendor=vendor,
        name=name,
        version=version,
        source=source,
        description=_string(manifest, "description", manifest_path, ""),
        main=main,
        readme=readme,
        dependencies=_dependencies(manifest.get("dependencies"), manifest_path),
        warnings=_warnings(manifest.get("warnings"), manifest_path),
        repository=_string(manifest, "repository", manifest_path, ""),
        keywords=_keywords(manifest.get("keywords"), manifest_path),
        authors=_authors(manifest.get("authors"), manifest_path),
        license=_string(manifest, "license", manifest_path, ""),
    )
    for tag, value in pkg.publish_tags():
        if len(value.encode()) > MAX_TAG_VALUE:
            raise _fail(manifest_path, f"field {tag.lower()!r} is too long for a message tag "
                        f"({len(value.encode())} bytes, at most {MAX_TAG_VALUE})")
    return pkg


def shipped_packages(root: str | Path | None = None) -> list[Package]:
    """Every package under `root` (default: the packages aos-py ships), as `<@vendor>/<name>/manifest.json`.

    Sorted by full name. A folder whose manifest disagrees with its path (vendor or name) is an error."""
    base = Path(root) if root is not None else packages_dir()
    found: list[Package] = []
    if not base.is_dir():
        return found
    for manifest_path in sorted(base.glob(f"@*/*/{MANIFEST}")):
        pkg = read_package(manifest_path.parent)
        folder_vendor, folder_name = manifest_path.parent.parent.name, manifest_path.parent.name
        if (pkg.vendor, pkg.name) != (folder_vendor, folder_name):
            raise _fail(manifest_path, f"declares {pkg.full_name} but lives in {folder_vendor}/{folder_name}/")
        found.append(pkg)
    found.sort(key=lambda p: p.full_name)
    return found
