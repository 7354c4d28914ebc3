"""The APM registry service, the @apm/apm client it serves and package folders, on a real local node.

Covers lua/services/apm_registry.lua, packages/@apm/apm, packages/@aos-py/* and
aos_py.node.packages: spec apm-token-herder.md §1 and §7 behaviours 1-11, plus bad input
(unknown packages, malformed manifests and publishes, old versions, foreign owners and
vendors, responses pushed by processes other than the registry).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from service_support import ALICE, BOB, tags_of, wait_for

from aos_py.client import Client
from aos_py.node.packages import MANIFEST, Package, PackageError, read_package, shipped_packages
from aos_py.resources import lua_dir, packages_dir, service_source

BLUEPRINT = (lua_dir() / "blueprints" / "apm.lua").read_text(encoding="utf-8")
CLIENT_DIR = packages_dir() / "@apm" / "apm"
CLIENT = read_package(CLIENT_DIR)
ANSI = re.compile(r"\x1b\[[0-9;]*m")

HERDER = """local M = {{ version = "{version}" }}
HerderLoads = (HerderLoads or 0) + 1
function M.hello() return "herder {version}" end
return M
"""


# ---------------------------------------------------------------- helpers





def write_package(root: Path, vendor: str, name: str, version: str, source: str,
                  readme: str = "", **manifest: object) -> Package:
    """Write a package folder under root/<vendor>/<name>-<version> and read it back."""
    d = root / vendor / f"{name}-{version}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "main.lua").write_text(source, encoding="utf-8")
    (d / "README.md").write_text(readme or f"# {vendor}/{name}\n", encoding="utf-8")
    doc = {"vendor": vendor, "name": name, "version": version, "description": f"{name} for tests",
           "main": "main.lua", "readme": "README.md", "dependencies": {},
           "warnings": {"modifiesGlobalState": False, "installMessage": ""}, "repository": "",
           "keywords": ["test"], "authors": [{"name": "tester"}], "license": "MIT"}
    doc.update(manifest)
    (d / MANIFEST).write_text(json.dumps(doc), encoding="utf-8")
    return read_package(d)


class World:
    """One node with a registry process and a user process that loaded the apm blueprint."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.c = Client.open(root / "node", services=False)
        self.reg = self.c.spawn(ALICE, name="apm-registry")
        res = self.c.eval(ALICE, self.reg, "ServiceConfig = {}\n" + service_source("apm_registry"))
        assert not res.get("Error"), res.get("Error")
        self.load_output = res["Output"]["data"]
        self.user = self.c.spawn(ALICE, name="user")
        self.lua(f'apm.ID = "{self.reg}"')

    def close(self) -> None:
        self.c.close()

    # evaluation
    def eval(self, pid: str, code: str, wallet=ALICE) -> dict:
        return self.c.eval(wallet, pid, code)

    def lua(self, code: str, pid: str | None = None) -> str:
        res = self.eval(pid or self.user, code)
        assert not res.get("Error"), res.get("Error")
        return res["Output"]["data"]

    def lua_error(self, code: str) -> str:
        res = self.eval(self.user, code)
        assert res.get("Error"), f"expected an error from {code}"
        return ANSI.sub("", res["Error"])

    def registry_state(self, expr: str) -> str:
        return self.lua("return " + expr, self.reg)

    # results and printed output
    def cursor(self, pid: str | None = None) -> int:
        rows = self.c.results(pid or self.user, limit=1, sort="DESC")
        return rows[0]["cursor"] if rows else 0

    def printed(self, pid: str | None = None, after: int | None = None) -> str:
        rows = self.c.results(pid or self.user, after=after, limit=500)
        out = []
        for row in rows:
            o = row["result"].get("Output")
            out.append(o.get("data", "") if isinstance(o, dict) else str(o or ""))
        return ANSI.sub("", "\n".join(out))

    def wait_printed(self, text: str, after: int | None = None, pid: str | None = None,
                     timeout: float = 10.0) -> str:
        return wait_for(lambda: (lambda s: s if text in s else "")(self.printed(pid, after)), timeout,
                        f"{text!r} printed by {pid or self.user}")

    # the registry
    def publish(self, pkg: Package, wallet=ALICE, tags: list[tuple[str, str]] | None = None,
                data: str | None = None) -> dict:
        """Publish from a wallet; returns the registry's reply message (Target, Data, tags)."""
        mid = self.c.send(wallet, self.reg, data=pkg.publish_data() if data is None else data,
                          tags=pkg.publish_tags() if tags is None else tags)
        return self.reply(mid)

    def request(self, action: str, data: str = "", wallet=ALICE, tags: list[tuple[str, str]] = ()) -> dict:
        mid = self.c.send(wallet, self.reg, data=data, tags=[("Action", action), *tags])
        return self.reply(mid)

    def reply(self, mid: str) -> dict:
        res = self.c.wait_result(self.reg, mid)
        assert not res.get("Error"), res.get("Error")
        assert len(res["Messages"]) == 1, res["Messages"]
        m = res["Messages"][0]
        return {"Target": m["Target"], "Data": m.get("Data", ""), **tags_of(m)}

    def ask(self, action: str, data: str = "") -> dict:
        """A read-only request by dry-run; returns the reply message."""
        res = self.c.dryrun(self.reg, data=data, tags=[("Action", action)])
        assert len(res["Messages"]) == 1, res
        m = res["Messages"][0]
        return {"Data": m.get("Data", ""), **tags_of(m)}

    def info(self, query: str) -> dict:
        reply = self.ask("APM.Info", query)
        assert reply.get("Result") == "success", reply
        return json.loads(reply["Data"])

    # the client in the user process
    def installed(self, full: str) -> str:
        return self.lua(f'return tostring(apm.installed["{full}"])')

    def install(self, query: str, full: str, version: str) -> str:
        """apm.install(query) and wait until `full` is installed at `version`; returns what was printed."""
        after = self.cursor()
        out = self.lua(f'return apm.install("{query}")')
        assert out.startswith("📦 Download requested for "), out
        wait_for(lambda: self.installed(full) == version, what=f"{full}@{version} installed")
        return self.wait_printed(f"✅ Downloaded {full}@{version}", after)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("apm"))
    pkgs = w.root / "pkgs"
    assert w.publish(CLIENT)["Result"] == "success"
    for vendor in ("@aos-py", "@sam", "@my-vendor"):
        assert w.request("APM.RegisterVendor", vendor)["Result"] == "success"
    for name in ("strings", "ascii-table"):
        assert w.publish(read_package(packages_dir() / "@aos-py" / name))["Result"] == "success"
    for version in ("1.0.2", "1.0.3"):
        reply = w.publish(write_package(pkgs, "@sam", "Llama-Herder", version, HERDER.format(version=version)))
        assert reply["Data"] == f"🎉 Published @sam/Llama-Herder@{version}", reply
    w.blueprint = w.eval(w.user, BLUEPRINT)
    wait_for(lambda: w.lua("return apm._version") == CLIENT.version, what="the APM client from the registry")
    yield w
    w.close()


# ---------------------------------------------------------------- package folders (aos_py.node.packages)

def test_shipped_packages_are_valid_and_consistent():
    found = {p.full_name: p for p in shipped_packages()}
    for name in ("@apm/apm", "@aos-py/strings", "@aos-py/ascii-table"):
        assert name in found, sorted(found)
    assert found["@aos-py/ascii-table"].dependencies == {"@aos-py/strings": {"version": "1.0.0"}}
    for pkg in found.values():   # every dependency ships too, at the version asked for
        for dep, spec in pkg.dependencies.items():
            assert dep in found and found[dep].version == spec["version"], (pkg.full_name, dep)
    # the client's own version string matches its manifest
    assert f'apm._version = "{CLIENT.version}"' in CLIENT.source
    assert [p.full_name for p in shipped_packages()] == sorted(found)


def test_publish_tags_and_data():
    pkg = read_package(packages_dir() / "@aos-py" / "ascii-table")
    tags = pkg.publish_tags()
    assert tags[0] == ("Action", "APM.Publish")
    t = dict(tags)
    assert (t["Name"], t["Vendor"], t["Version"]) == ("ascii-table", "@aos-py", "1.0.0")
    assert json.loads(t["Dependencies"]) == {"@aos-py/strings": {"version": "1.0.0"}}
    assert json.loads(t["Warnings"]) == {"modifiesGlobalState": False, "installMessage": ""}
    assert json.loads(t["Keywords"]) == ["table", "format", "print"]
    assert json.loads(t["Authors"]) == [{"name": "aos-py"}]
    assert t["License"] == "MIT"
    assert "Repository" not in t          # empty values cannot be tags; the registry defaults them
    assert all(v for _, v in tags)
    data = json.loads(pkg.publish_data())
    assert data == {"source": (pkg.path / "main.lua").read_text(), "readme": (pkg.path / "README.md").read_text()}


GOOD = {"vendor": "@v", "name": "p", "version": "1.0.0", "main": "main.lua"}


@pytest.mark.parametrize("change, where, message", [
    ({"version": None}, MANIFEST, "missing field 'version'"),
    ({"vendor": None}, MANIFEST, "missing field 'vendor'"),
    ({"name": None}, MANIFEST, "missing field 'name'"),
    ({"version": "1.0"}, MANIFEST, "field 'version' '1.0'"),
    ({"version": 1}, MANIFEST, "field 'version' must be a string"),
    ({"vendor": "@Sam"}, MANIFEST, "field 'vendor' '@Sam'"),
    ({"vendor": "sam"}, MANIFEST, "field 'vendor' 'sam'"),
    ({"name": "bad name"}, MANIFEST, "field 'name' 'bad name'"),
    ({"main": "missing.lua"}, "missing.lua", "no such file"),
    ({"main": "../main.lua"}, MANIFEST, "field 'main' must be a file name inside"),
    ({"readme": "NOPE.md"}, "NOPE.md", "no such file"),
    ({"dependencies": ["@a/b"]}, MANIFEST, "field 'dependencies' must be an object"),
    ({"dependencies": {"a/b": {"version": "1.0.0"}}}, MANIFEST, "dependency 'a/b' is not a valid"),
    ({"dependencies": {"@a/b": {"version": "1"}}}, MANIFEST, "dependency '@a/b' needs"),
    ({"warnings": {"modifiesGlobalState": "yes"}}, MANIFEST, "'warnings.modifiesGlobalState'"),
    ({"keywords": "x"}, MANIFEST, "field 'keywords'"),
    ({"authors": [{"nick": "x"}]}, MANIFEST, "field 'authors[0]' has unknown keys"),
    ({"description": "x" * 4000}, MANIFEST, "field 'description' is too long"),
])
def test_read_package_rejects_malformed_manifests(tmp_path, change, where, message):
    doc = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    (tmp_path / "main.lua").write_text("return {}")
    (tmp_path / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(PackageError) as exc:
        read_package(tmp_path)
    assert str(exc.value).startswith(str(tmp_path / where) + ": "), str(exc.value)
    assert message in str(exc.value)


def test_read_package_rejects_missing_or_broken_files(tmp_path):
    with pytest.raises(PackageError, match="manifest.json: no such file"):
        read_package(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(PackageError, match="manifest.json: not valid JSON"):
        read_package(tmp_path)
    (tmp_path / MANIFEST).write_text("[1]")
    with pytest.raises(PackageError, match="must hold a JSON object"):
        read_package(tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps(GOOD))
    with pytest.raises(PackageError, match=r"main\.lua: no such file"):
        read_package(tmp_path)
    (tmp_path / "main.lua").write_text("  \n")
    with pytest.raises(PackageError, match="the main file is empty"):
        read_package(tmp_path)
    (tmp_path / "main.lua").write_text("return 1")
    pkg = read_package(tmp_path)          # defaults: no readme file, no dependencies
    assert (pkg.full_name, pkg.readme, pkg.dependencies, pkg.version_tuple) == ("@v/p", "", {}, (1, 0, 0))


def test_shipped_packages_checks_folder_names(tmp_path):
    write_package(tmp_path, "@v", "p", "1.0.0", "return 1")      # lives in @v/p-1.0.0/
    with pytest.raises(PackageError, match="declares @v/p but lives in @v/p-1.0.0/"):
        shipped_packages(tmp_path)
    assert shipped_packages(tmp_path / "nowhere") == []


# ---------------------------------------------------------------- §7 behaviours 1-11

def test_1_blueprint_prints_loading_and_sends_one_update(world):
    res = world.blueprint
    assert not res.get("Error")
    assert res["Output"]["data"] == "📦 Loading APM..."
    assert len(res["Messages"]) == 1
    m = res["Messages"][0]
    assert m["Target"] == world.reg and tags_of(m)["Action"] == "APM.Update"
    world.wait_printed(f"[APM] APM.Update - @apm/apm@{CLIENT.version} by {world.user}", pid=world.reg)


def test_2_update_response_installs_the_client_once(world):
    assert world.lua("return apm.ID") == world.reg
    assert world.lua("return apm._version") == CLIENT.version
    assert world.lua("return type(apm.installed)") == "table"
    assert world.lua("return tostring(APM == apm)") == "true"
    assert world.lua("return tostring(package.loaded.apm == apm)") == "true"
    assert world.lua("return type(apm.publish)") == "function"
    out = world.printed()
    # printed once, with the version just installed (not the built-in 2.0.6)
    assert out.count("✅ APM client v") == 1, out
    assert f"✅ APM client v{CLIENT.version} loaded" in out
    assert out.count("usage: apm.install <package name>") == 1


def test_3_install_sends_download(world):
    res = world.eval(world.user, 'return apm.install("@sam/Llama-Herder")')
    assert res["Output"]["data"] == "📦 Download requested for @sam/Llama-Herder"
    [m] = res["Messages"]
    assert m["Target"] == world.reg and m["Data"] == "@sam/Llama-Herder"
    assert tags_of(m)["Action"] == "APM.Download"
    wait_for(lambda: world.installed("@sam/Llama-Herder") == "1.0.3", what="Llama-Herder installed")


def test_4_query_parsing(world):
    res = world.eval(world.user, 'return apm.install("Llama-Herder")')
    assert res["Output"]["data"] == "📦 Download requested for @apm/Llama-Herder"
    assert res["Messages"][0]["Data"] == "@apm/Llama-Herder"
    assert "Invalid vendor name" in world.lua_error('return apm.install("@Sam/x")')
    assert "Invalid package name" in world.lua_error('return apm.install("pkg@1.2.3.4")')
    assert "Invalid version" in world.lua_error('return apm.install("@sam/Llama-Herder@1.0")')


def test_5_download_installs_module(world):
    wait_for(lambda: world.installed("@sam/Llama-Herder") == "1.0.3", what="Llama-Herder installed")
    assert world.lua('return require("@sam/Llama-Herder").hello()') == "herder 1.0.3"
    assert world.lua("return HerderLoads") == "1"
    assert "✅ Downloaded @sam/Llama-Herder@1.0.3" in world.printed()


def test_6_apm_packages_load_under_the_bare_name(world):
    hello = write_package(world.root / "pkgs", "@apm", "hello", "1.0.0", "return { greet = 'hi' }")
    assert world.publish(hello)["Result"] == "success"      # ALICE owns the registry, hence @apm
    world.install("hello", "@apm/hello", "1.0.0")
    assert world.lua("return package.loaded.hello.greet") == "hi"
    assert world.lua('return tostring(package.loaded["@apm/hello"])') == "nil"
    assert world.lua('return apm.uninstall("hello")') == "🗑️ Uninstalled @apm/hello"
    assert world.lua("return tostring(package.loaded.hello)") == "nil"


def test_7_unknown_package(world):
    after = world.cursor()
    assert world.lua('return apm.install("@nope/missing")') == "📦 Download requested for @nope/missing"
    out = world.wait_printed("Data = Package not found", after)
    assert f"New Message From {world.reg[:3]}...{world.reg[-3:]}" in out
    reply = json.loads(world.lua("""
      for i = #Inbox, 1, -1 do
        local m = Inbox[i]
        if m.From == apm.ID and m.Data == "Package not found" then
          return json.encode({ Action = m.Action or "none", Result = m.Result })
        end
      end
      return "{}" """))
    assert reply == {"Action": "none", "Result": "error"}
    assert world.installed("@nope/missing") == "nil"
    # the registry's side: an error reply with no Action, and a log line
    r = world.request("APM.Download", "@nope/missing")
    assert (r["Result"], r["Data"], "Action" in r) == ("error", "Package not found", False)
    assert "[APM] APM.Download - Package not found" in world.printed(world.reg)


def test_8_download_response_from_another_sender_is_refused(world):
    evil = world.c.spawn(BOB, name="evil")
    code = "EvilRan = true\nreturn { evil = true }"
    push = f"""Send({{ Target = "{world.user}", Action = "APM.DownloadResponse", Result = "success",
        Name = "@evil/x", Version = "1.0.0", PkgID = string.rep("E", 43), Data = "{code.encode().hex()}",
        Dependencies = "{{}}", Warnings = "{{}}" }})
      Send({{ Target = "{world.user}", Action = "APM.UpdateResponse", Result = "success",
        Name = "@apm/apm", Version = "9.9.9", Data = "{b'EvilUpdate = true'.hex()}" }})"""
    after = world.cursor()
    res = world.eval(evil, push, wallet=BOB)
    assert not res.get("Error"), res.get("Error")
    world.wait_printed("Attempt to download from illegal source", after)
    world.wait_printed("Attempt to update from illegal source", after)
    # a wallet-signed message (From = BOB) is no better
    world.c.send(BOB, world.user, data=code.encode().hex(), tags=[
        ("Action", "APM.DownloadResponse"), ("Result", "success"), ("Name", "@evil/y"), ("Version", "1.0.0")])
    wait_for(lambda: world.printed(after=after).count("Attempt to download from illegal source") == 2,
             what="the second refusal")
    assert world.lua("return tostring(EvilRan) .. tostring(EvilUpdate)") == "nilnil"
    assert world.installed("@evil/x") == "nil" and world.installed("@evil/y") == "nil"
    assert world.lua('return tostring(package.loaded["@evil/x"])') == "nil"
    assert world.lua("return apm._version") == CLIENT.version


def test_9_explicit_version_and_numeric_order(world):
    pkgs = world.root / "pkgs"
    world.install("@sam/Llama-Herder@1.0.2", "@sam/Llama-Herder", "1.0.2")
    assert world.lua('return require("@sam/Llama-Herder").hello()') == "herder 1.0.2"
    # already at that version: nothing is sent
    res = world.eval(world.user, 'return apm.install("@sam/Llama-Herder@1.0.2")')
    assert res["Output"]["data"] == "✅ Package @sam/Llama-Herder already installed" and res["Messages"] == []
    # numeric order: 1.10.0 is newer than 1.9.0 (text order would say otherwise)
    for v in ("1.9.0", "1.10.0"):
        assert world.publish(write_package(pkgs, "@my-vendor", "numeric", v, f"return '{v}'"))["Result"] == "success"
    assert world.info("@my-vendor/numeric")["Version"] == "1.10.0"
    world.install("@my-vendor/numeric", "@my-vendor/numeric", "1.10.0")   # a hyphenated vendor works too
    assert world.lua('return require("@my-vendor/numeric")') == "1.10.0"
    # a PkgID names exactly one row
    old = next(v for v in world.info("@sam/Llama-Herder")["Versions"] if v["Version"] == "1.0.3")
    world.install(f"@sam/Llama-Herder@{old['PkgID']}", "@sam/Llama-Herder", "1.0.3")
    assert world.lua('return require("@sam/Llama-Herder").hello()') == "herder 1.0.3"
    for query, error in (("@sam/Llama-Herder@7.7.7", "Version not found"), ("Llama-Herder", "Invalid vendor name"),
                         ("@sam/Llama-Herder@1.0", "Invalid version"), ("@sam/Llama-Herder@1x2y3", "Invalid version"),
                         ("@Sam/Llama-Herder", "Invalid vendor name"), ("@sam/Llama Herder", "Invalid package name")):
        r = world.request("APM.Download", query)
        assert (r["Result"], r["Data"], "Action" in r) == ("error", error, False), query


def test_10_download_counters_and_info_versions(world):
    before = world.info("@my-vendor/numeric")
    rows = {v["Version"]: v["Installs"] for v in before["Versions"]}
    world.install("@my-vendor/numeric@1.9.0", "@my-vendor/numeric", "1.9.0")
    after = world.info("@my-vendor/numeric")
    assert [v["Version"] for v in after["Versions"]] == ["1.10.0", "1.9.0"]        # newest first
    assert {v["Version"]: v["Installs"] for v in after["Versions"]} == {**rows, "1.9.0": rows["1.9.0"] + 1}
    assert after["TotalInstalls"] == before["TotalInstalls"] + 1
    assert world.info("@my-vendor/numeric@1.9.0")["TotalInstalls"] == after["TotalInstalls"]  # every row
    assert after["Installs"] == before["Installs"]                              # 1.10.0 was not served
    info = world.info("@aos-py/strings")
    for key in ("ID", "Vendor", "Name", "Version", "Owner", "Installs", "TotalInstalls", "Description", "PkgID",
                "Source", "Readme", "Authors", "Dependencies", "Repository", "Keywords", "Warnings", "License",
                "Timestamp", "Versions"):
        assert key in info, key
    strings = read_package(packages_dir() / "@aos-py" / "strings")
    assert bytes.fromhex(info["Source"]).decode() == strings.source
    assert bytes.fromhex(info["Readme"]).decode() == strings.readme
    assert info["Owner"] == ALICE.address and json.loads(info["Keywords"]) == strings.keywords
    # Info defaults the vendor to @apm
    assert world.info("apm")["Name"] == "apm"


def test_11_dependencies_are_installed(world):
    out = world.install("@aos-py/ascii-table", "@aos-py/ascii-table", "1.0.0")
    assert "ℹ️ Installing dependency @aos-py/strings@1.0.0" in out
    wait_for(lambda: world.installed("@aos-py/strings") == "1.0.0", what="the dependency installed")
    world.wait_printed(f"[APM] APM.Download - @aos-py/strings@1.0.0 by {world.user}", pid=world.reg)
    table = world.lua('return require("@aos-py/ascii-table").render({ { "alice", 10 }, { "bob", 2500 } }, '
                      '{ "Who", "Balance" })')
    assert table == "Who   | Balance\n------+--------\nalice |      10\nbob   |    2500"


# ---------------------------------------------------------------- publishing rules and bad input

def test_registry_rejects_malformed_publishes(world):
    pkgs = world.root / "pkgs"
    good = write_package(pkgs, "@my-vendor", "fresh", "1.0.0", "return 1")
    base = dict(good.publish_tags())
    count = world.registry_state("#Packages")

    def without(name):
        return [(k, v) for k, v in base.items() if k != name]

    def with_(name, value):
        return list({**base, name: value}.items())

    cases = [
        (without("Version"), None, "Missing Version tag"),
        (without("Name"), None, "Missing Name tag"),
        (without("Vendor"), None, "Missing Vendor tag"),
        (with_("Vendor", "@Bad"), None, "Invalid vendor name: @Bad"),
        (with_("Name", "bad name"), None, "Invalid package name: bad name"),
        (with_("Version", "1.0"), None, "Invalid version: 1.0 (expected major.minor.patch)"),
        (None, "not json", "Invalid Data: expected JSON {source, readme}"),
        (None, json.dumps({"readme": "only"}), "Missing source in Data"),
        (None, json.dumps({"source": "   "}), "Missing source in Data"),
        (with_("Dependencies", "{oops"), None, "Invalid Dependencies JSON"),
        (with_("Dependencies", '{"nope": {"version": "1.0.0"}}'), None, "Invalid dependency name: nope"),
        (with_("Dependencies", '{"@a/b": {"version": "1.0"}}'), None, "Invalid dependency version for @a/b"),
        (with_("Warnings", "["), None, "Invalid Warnings JSON"),
        (with_("Keywords", "nope"), None, "Invalid Keywords JSON"),
    ]
    for tags, data, message in cases:
        r = world.publish(good, tags=tags, data=data)
        assert (r["Result"], r["Data"]) == ("error", message), (message, r)
        assert "Action" not in r and r["Target"] == ALICE.address
    assert world.registry_state("#Packages") == count
    assert world.ask("APM.Info", "@my-vendor/fresh")["Data"] == "Package not found"
    assert "[APM] APM.Publish - Missing Version tag" in world.printed(world.reg)


def test_publish_of_an_older_version_is_refused(world):
    pkgs = world.root / "pkgs"
    before = world.info("@my-vendor/numeric")
    count = world.registry_state("#Packages")
    for v, source in (("1.9.5", "return 'old'"), ("1.10.0", "return 'changed'"), ("0.1.0", "return 0")):
        r = world.publish(write_package(pkgs, "@my-vendor", "numeric", v, source))
        assert r["Result"] == "error"
        assert r["Data"] == f"Version {v} is not newer than the latest @my-vendor/numeric@1.10.0"
    # the same version with the same source again is a harmless no-op (a node re-seeding its packages)
    same = write_package(pkgs, "@my-vendor", "numeric", "1.10.0", "return '1.10.0'")
    r = world.publish(same)
    assert (r["Result"], r["Data"]) == ("success", "✅ @my-vendor/numeric@1.10.0 is already published")
    assert world.registry_state("#Packages") == count
    assert world.info("@my-vendor/numeric") == before


def test_publish_needs_the_owner_and_a_registered_vendor(world):
    pkgs = world.root / "pkgs"
    r = world.publish(write_package(pkgs, "@sam", "Llama-Herder", "2.0.0", "return 2"), wallet=BOB)
    assert (r["Result"], r["Data"]) == ("error", "Only the owner of @sam/Llama-Herder can publish new versions")
    r = world.publish(write_package(pkgs, "@sam", "other", "1.0.0", "return 2"), wallet=BOB)
    assert (r["Result"], r["Data"]) == ("error", "Vendor @sam belongs to another owner")
    r = world.publish(write_package(pkgs, "@unregistered", "x", "1.0.0", "return 2"), wallet=BOB)
    assert r["Data"] == "Vendor @unregistered is not registered (send APM.RegisterVendor first)"
    r = world.publish(write_package(pkgs, "@apm", "bobs", "1.0.0", "return 2"), wallet=BOB)
    assert (r["Result"], r["Data"]) == ("error", "Vendor @apm belongs to another owner")
    # vendors: first come, first served; "@" is added; the naming rule applies
    assert world.request("APM.RegisterVendor", "@sam", wallet=BOB)["Data"] == "Vendor @sam is already registered"
    assert world.request("APM.RegisterVendor", "apm", wallet=BOB)["Data"] == "Vendor @apm is already registered"
    assert world.request("APM.RegisterVendor", "@Bob", wallet=BOB)["Data"] == "Invalid vendor name"
    r = world.request("APM.RegisterVendor", "bob-tools", wallet=BOB)
    assert (r["Result"], r["Data"]) == ("success", "🎉 Registered @bob-tools")
    r = world.request("APM.RegisterVendor", "@bob-tools", wallet=BOB)
    assert (r["Result"], r["Data"]) == ("success", "✅ @bob-tools is already registered to you")
    r = world.publish(write_package(pkgs, "@bob-tools", "x", "1.0.0", "return 'bob'"), wallet=BOB)
    assert (r["Result"], r["Data"]) == ("success", "🎉 Published @bob-tools/x@1.0.0")
    assert r["LatestClientVersion"] == CLIENT.version
    assert world.info("@bob-tools/x")["Owner"] == BOB.address


def test_transfer(world):
    pkgs = world.root / "pkgs"
    assert world.publish(write_package(pkgs, "@my-vendor", "gift", "1.0.0", "return 1"))["Result"] == "success"
    transfer = [("Vendor", "@my-vendor"), ("Name", "gift"), ("Recipient", BOB.address)]
    r = world.request("APM.Transfer", wallet=BOB, tags=transfer)
    assert (r["Result"], r["Data"]) == ("error", "Only the owner of @my-vendor/gift can transfer it")
    r = world.request("APM.Transfer", tags=[*transfer[:2], ("Recipient", "nobody")])
    assert (r["Result"], r["Data"]) == ("error", "Invalid recipient address")
    r = world.request("APM.Transfer", tags=transfer)
    assert (r["Result"], r["Data"]) == ("success", f"🎉 Transferred @my-vendor/gift to {BOB.address}")
    assert world.info("@my-vendor/gift")["Owner"] == BOB.address
    r = world.publish(write_package(pkgs, "@my-vendor", "gift", "1.1.0", "return 2"))
    assert r["Data"] == "Only the owner of @my-vendor/gift can publish new versions"
    r = world.publish(write_package(pkgs, "@my-vendor", "gift", "1.1.0", "return 2"), wallet=BOB)
    assert r["Result"] == "success"
    r = world.request("APM.Transfer", tags=[("Vendor", "@my-vendor"), ("Name", "nothing"), ("Recipient", BOB.address)])
    assert (r["Result"], r["Data"]) == ("error", "Package not found")


def test_search_popular_and_vendor_lists(world):
    found = json.loads(world.ask("APM.Search", "string")["Data"])
    assert [(p["Vendor"], p["Name"]) for p in found] == [("@aos-py", "strings")]
    assert set(found[0]) == {"Vendor", "Name", "Version", "Owner", "Installs", "TotalInstalls", "Description",
                             "Readme", "PkgID"}
    by_vendor = json.loads(world.ask("APM.Search", "@aos")["Data"])
    assert {p["Name"] for p in by_vendor} == {"strings", "ascii-table"}
    both = json.loads(world.ask("APM.Search", "@sam/llama")["Data"])
    assert [(p["Name"], p["Version"]) for p in both] == [("Llama-Herder", "1.0.3")]     # latest row only
    assert json.loads(world.ask("APM.Search", "@aos-py/llama")["Data"]) == []
    r = world.ask("APM.Search", "")
    assert (r["Result"], r["Data"], "Action" in r) == ("error", "No search query provided", False)
    assert world.ask("APM.Search", "x")["Action"] == "APM.SearchResponse"

    popular = world.ask("APM.Popular")
    assert popular["Action"] == "APM.PopularResponse"
    top = json.loads(popular["Data"])
    assert "Repository" in top[0]
    totals = [p["TotalInstalls"] for p in top]
    assert totals == sorted(totals, reverse=True) and totals[0] >= 3          # Llama-Herder: 3 downloads so far
    assert len({(p["Vendor"], p["Name"]) for p in top}) == len(top)

    vendor = world.ask("APM.VendorOrAddressPackages", "@my-vendor")
    assert vendor["Action"] == "APM.VendorPackagesResponse"
    assert {p["Name"] for p in json.loads(vendor["Data"])} == {"numeric", "gift"}
    bobs = json.loads(world.ask("APM.VendorOrAddressPackages", BOB.address)["Data"])
    assert {(p["Vendor"], p["Name"]) for p in bobs} == {("@bob-tools", "x"), ("@my-vendor", "gift")}
    assert world.ask("APM.VendorOrAddressPackages", "??")["Data"] == "Invalid vendor name or address"


def test_client_info_and_search_commands(world):
    after = world.cursor()
    assert world.lua('return apm.info("@sam/Llama-Herder")') == "📦 Info requested for @sam/Llama-Herder"
    out = world.wait_printed("🔗 Repository Url", after)
    assert "📦 @sam/Llama-Herder" in out and "🔖 Latest Version : 1.0.3" in out
    assert world.lua('return apm.search("ascii")') == "🔍 Search requested for ascii"
    world.wait_printed("@aos-py/ascii-table | Render rows", after)


def test_publish_from_a_process_with_the_lua_client(world):
    after = world.cursor()
    assert world.lua('return apm.registerVendor("user-tools")') == "📤 Vendor registration requested for @user-tools"
    world.wait_printed(f"[APM] APM.RegisterVendor - @user-tools by {world.user}", pid=world.reg)
    world.wait_printed("Data = 🎉 Registered", after)     # the reply, shown by the default handler
    out = world.lua("""return apm.publish({ vendor = "@user-tools", name = "answer", version = "1.0.0",
        source = "return { value = 42 }", description = "The answer", keywords = { "x" },
        warnings = { modifiesGlobalState = true, installMessage = "Hello from answer" } })""")
    assert out == "📤 Publish requested for @user-tools/answer@1.0.0"
    world.wait_printed(f"[APM] APM.Publish - @user-tools/answer@1.0.0 by {world.user}", pid=world.reg)
    info = world.info("@user-tools/answer")
    assert (info["Owner"], info["Description"], info["Dependencies"]) == (world.user, "The answer", "{}")
    out = world.install("@user-tools/answer", "@user-tools/answer", "1.0.0")
    assert "⚠️ Package modifies global state" in out and "⚠️ Hello from answer" in out
    assert world.lua('return require("@user-tools/answer").value') == "42"
    assert "Invalid version" in world.lua_error('return apm.publish({ vendor = "@user-tools", name = "a", '
                                                'version = "1", source = "x" })')
    assert "Missing package source" in world.lua_error('return apm.publish({ name = "a", version = "1.0.0" })')


def test_reloading_the_registry_keeps_its_state(world):
    count = world.registry_state("#Packages")
    totals = world.info("@sam/Llama-Herder")["TotalInstalls"]
    res = world.eval(world.reg, "ServiceConfig = {}\n" + service_source("apm_registry"))
    assert not res.get("Error"), res.get("Error")
    assert res["Output"]["data"].startswith(f"[APM] registry loaded: {count} package versions")
    assert world.registry_state("#Packages") == count
    assert world.info("@sam/Llama-Herder")["TotalInstalls"] == totals
    names = json.loads(world.registry_state(
        "(function() local n = {} for _, h in ipairs(Handlers.list) do n[#n + 1] = h.name end "
        "return require('json').encode(n) end)()"))
    assert len(names) == len(set(names)) and "APM.Download" in names      # handlers replaced, not added twice


def test_update_reply_serves_the_latest_client(world):
    r = world.ask("APM.Update")
    assert (r["Action"], r["Result"], r["Name"]) == ("APM.UpdateResponse", "success", "@apm/apm")
    assert r["Version"] == r["LatestClientVersion"] == CLIENT.version
    assert bytes.fromhex(r["Data"]).decode() == CLIENT.source
    assert r["PkgID"] == world.info("apm")["PkgID"]


def test_update_to_a_newer_client(world):
    # last: publishes a newer @apm/apm and moves the user to it
    newer = write_package(world.root / "pkgs", "@apm", "apm", "2.99.0",
                          CLIENT.source.replace(f'local VERSION = "{CLIENT.version}"', 'local VERSION = "2.99.0"'))
    assert world.publish(newer)["Result"] == "success"
    notice = world.install("@my-vendor/numeric", "@my-vendor/numeric", "1.10.0")
    assert "⚠️ APM update available v:2.99.0 run 'apm.update()'" in notice
    installed = world.lua("return require('json').encode(apm.installed)")
    after = world.cursor()
    assert world.lua("return apm.update()") == "📦 Update requested"
    wait_for(lambda: world.lua("return apm._version") == "2.99.0", what="the client update")
    out = world.wait_printed("✅ Updated APM to v:2.99.0", after)
    assert out.count("✅ Updated APM") == 1 and "✅ APM client v" not in out
    assert world.lua("return tostring(APM == apm)") == "true"
    assert world.lua("return apm.ID") == world.reg
    assert world.lua("return require('json').encode(apm.installed)") == installed
    # the new client is the one answering: a download still works and no update notice remains
    out = world.install("@my-vendor/numeric@1.9.0", "@my-vendor/numeric", "1.9.0")
    assert "APM update available" not in out
