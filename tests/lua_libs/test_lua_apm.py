"""The built-in APM client (.apm) inside a real process (aos_py.runtime)."""

from __future__ import annotations

import pytest

# ---------------------------------------------------------------- apm (through the process runtime)

APM_ID = "DKF8oXtPvh3q8s0fJFIeHFyHNM6oKrwMCUrPxEMroak"
PID = "PROCESS-ID-0123456789"
OWNER = "OWNER-ADDRESS-012345"
ENV = {"Process": {"Id": PID, "Owner": OWNER, "Tags": [
    {"name": "Name", "value": "Thomas"}, {"name": "Module", "value": "WOOPAWOOPA"}]}}


class Proc:
    """A booted process and a message counter."""

    def __init__(self, env: dict = ENV) -> None:
        from aos_py.runtime import ProcessRuntime

        self.env = env
        self.rt = ProcessRuntime()
        self.n = 0
        self.send(OWNER, None, [], id_=PID, all_tags=list(env["Process"]["Tags"]))

    def send(self, sender: str, data: str | None, tags: list[tuple[str, str]], action: str | None = None,
             id_: str | None = None, all_tags: list[dict] | None = None) -> dict:
        self.n += 1
        m = {"Id": id_ or f"MSG-{self.n}", "Target": PID, "Owner": sender, "From": sender, "Module": "WOOPAWOOPA",
             "Block-Height": "1000", "Timestamp": 1700000000000 + self.n,
             "Tags": ([{"name": "Action", "value": action}] if action else [])
             + [{"name": k, "value": v} for k, v in tags]}
        if all_tags is not None:
            m["Tags"] = all_tags
        if data is not None:
            m["Data"] = data
        return self.rt.handle(m, self.env)

    def eval(self, code: str) -> dict:
        return self.send(OWNER, code, [], action="Eval")

    def value(self, code: str) -> str:
        res = self.eval(code)
        assert not res.get("Error"), res.get("Error")
        return res["Output"]["data"]

    def error(self, code: str) -> str:
        res = self.eval(code)
        assert res.get("Error"), f"expected an error from {code}"
        return res["Error"]

    def download(self, name: str, version: str, source: str, sender: str = APM_ID, result: str = "success",
                 **tags: str) -> dict:
        t = [("Result", result), ("Name", name), ("Version", version), ("PkgID", "P" * 43),
             ("LatestClientVersion", tags.pop("latest", "2.0.6"))] + list(tags.items())
        return self.send(sender, source.encode().hex(), t, action="APM.DownloadResponse")


def _tags(m: dict) -> dict:
    return {t["name"]: t["value"] for t in m.get("Tags", [])}


def _printed(res: dict) -> str:
    out = res.get("Output") or {}
    return out.get("data", "") if isinstance(out, dict) else str(out)


@pytest.fixture
def proc():
    pytest.importorskip("aos_py.runtime", reason="aos_py is not importable here (install the project with `make venv`)")
    p = Proc()
    yield p
    p.rt.close()


HERDER = "local M = { name = 'herder' }\nHerderLoaded = (HerderLoaded or 0) + 1\nreturn M"


def test_apm_loads_with_the_process(proc):
    assert proc.value("apm.ID .. ' ' .. apm._version .. ' ' .. type(apm.installed)") == f"{APM_ID} 2.0.6 table"
    names = proc.value("local t = {} for _, h in ipairs(Handlers.list) do t[#t+1] = h.name end "
                       "return table.concat(t, ',')")
    assert "APM.DownloadResponse,APM.SearchResponse,APM.InfoResponse,APM.UpdateResponse" in names
    assert proc.value("type(json) .. ' ' .. type(base64) .. ' ' .. tostring(APM == apm)") == "table table true"


def test_apm_install_sends_download_request(proc):
    res = proc.eval('apm.install("@sam/Llama-Herder")')
    assert res["Output"]["data"] == "📦 Download requested for @sam/Llama-Herder"
    [m] = res["Messages"]
    assert m["Target"] == APM_ID and m["Data"] == "@sam/Llama-Herder"
    assert _tags(m)["Action"] == "APM.Download"
    res = proc.eval('apm.install("Llama-Herder")')
    assert res["Messages"][0]["Data"] == "@apm/Llama-Herder"
    assert proc.eval('apm.install("@my-vendor/pkg@1.10.0")')["Messages"][0]["Data"] == "@my-vendor/pkg@1.10.0"
    assert "Invalid vendor name" in proc.error('apm.install("@Sam/x")')
    assert "Invalid package name" in proc.error('apm.install("pkg@1.2.3.4")')
    assert "Invalid version" in proc.error('apm.install("pkg@1.0")')
    assert "Invalid package name" in proc.error('apm.install("")')
    assert not proc.eval('pcall(apm.install, "@Sam/x")').get("Messages")


def test_apm_download_response_installs_package(proc):
    res = proc.download("@sam/Llama-Herder", "1.0.3", HERDER, Dependencies="{}", Warnings="{}")
    assert "✅ Downloaded @sam/Llama-Herder@1.0.3" in _printed(res)
    assert proc.value('require("@sam/Llama-Herder").name') == "herder"
    assert proc.value('apm.installed["@sam/Llama-Herder"]') == "1.0.3"
    assert proc.value('apm.install("@sam/Llama-Herder@1.0.3")') == "✅ Package @sam/Llama-Herder already installed"
    # @apm packages are loaded under their bare name; no Dependencies tag means none
    proc.download("@apm/tiny", "0.1.0", "return 42")
    assert proc.value('tostring(require("tiny"))') == "42"
    assert proc.value('apm.uninstall("tiny")') == "🗑️ Uninstalled @apm/tiny"
    assert proc.value('tostring(package.loaded["tiny"]) .. " " .. tostring(apm.installed["@apm/tiny"])') == "nil nil"
    assert "Package not installed" in proc.error('apm.uninstall("tiny")')


def test_apm_rejects_responses_from_other_senders(proc):
    res = proc.download("@evil/x", "1.0.0", "Pwned = true return {}", sender="EVIL-PROCESS-ADDRESS-000")
    assert "Attempt to download from illegal source" in _printed(res)
    assert proc.value("tostring(Pwned) .. ' ' .. tostring(apm.installed['@evil/x'])") == "nil nil"
    res = proc.download("@sam/x", "1.0.0", "Pwned = true return {}", result="error")
    assert "Download failed: @sam/x" in _printed(res)
    assert proc.value("tostring(Pwned)") == "nil"
    res = proc.send("EVIL-PROCESS-ADDRESS-000", b"Pwned = true".hex(), [("Result", "success"),
                    ("Version", "9.9.9")], action="APM.UpdateResponse")
    assert "Attempt to update from illegal source" in _printed(res)
    assert proc.value("tostring(Pwned) .. ' ' .. apm._version") == "nil 2.0.6"


def test_apm_warnings_dependencies_and_update_notice(proc):
    res = proc.download("@a/main", "1.0.0", "return {}", latest="2.0.10",
                       Warnings='{"modifiesGlobalState": true, "installMessage": "read the docs"}',
                       Dependencies='{"@a/b": {"version": "1.0.0"}}')
    text = _printed(res)
    assert "⚠️ Package modifies global state" in text
    assert "⚠️ read the docs" in text
    assert "ℹ️ Installing dependency @a/b@1.0.0" in text
    assert "⚠️ APM update available v:2.0.10 run 'apm.update()'" in text  # 2.0.10 > 2.0.6 numerically
    [m] = res["Messages"]
    assert m["Target"] == APM_ID and m["Data"] == "@a/b@1.0.0"
    res = proc.download("@a/other", "1.0.0", "return {}", latest="2.0.5")
    assert "update available" not in _printed(res)


def test_apm_search_info_update(proc):
    res = proc.eval('apm.search("llama")')
    assert res["Output"]["data"] == "🔍 Search requested for llama"
    assert _tags(res["Messages"][0])["Action"] == "APM.Search"
    res = proc.send(APM_ID, '[{"Vendor": "@sam", "Name": "Llama-Herder", "Description": "LLM inference"}]',
                    [("Result", "success")], action="APM.SearchResponse")
    assert "@sam/Llama-Herder | LLM inference" in _printed(res)
    res = proc.send(APM_ID, "[]", [("Result", "success")], action="APM.SearchResponse")
    assert "No packages found" in _printed(res)
    res = proc.send(APM_ID, '{"Vendor": "@sam", "Name": "Llama-Herder", "Description": "d", "Version": "1.0.3", '
                    '"TotalInstalls": 306, "PkgID": "abc", "Repository": "https://example.org/r"}',
                    [("Result", "success")], action="APM.InfoResponse")
    text = _printed(res)
    assert "🔖 Latest Version : " in text and "1.0.3" in text and "306" in text
    assert proc.eval("apm.update()")["Messages"][0]["Target"] == APM_ID
    client = "apm = apm or {} apm.fresh = true"
    res = proc.send(APM_ID, client.encode().hex(), [("Result", "success"), ("Version", "2.0.7")],
                    action="APM.UpdateResponse")
    assert "✅ Updated APM to v:2.0.7" in _printed(res)
    assert proc.value("tostring(apm.fresh) .. ' ' .. apm._version") == "true 2.0.7"


def test_apm_registry_id_can_be_repointed(proc):
    proc.eval('apm.ID = "LOCAL-REGISTRY-PROCESS-ID-00000000000000000"')
    res = proc.eval('apm.install("x")')
    assert res["Messages"][0]["Target"] == "LOCAL-REGISTRY-PROCESS-ID-00000000000000000"
    res = proc.download("@apm/x", "1.0.0", "return 1")  # from the old id: refused
    assert "Attempt to download from illegal source" in _printed(res)


def test_apm_broken_package_is_reported_not_installed(proc):
    res = proc.download("@sam/broken", "1.0.0", "local x = = 1")
    assert "APM.DownloadResponse - " in _printed(res) and "Error compiling load function" in _printed(res)
    [m] = res["Messages"]
    assert m["Target"] == APM_ID and _tags(m)["Result"] == "error"
    assert m["Data"].startswith("Error compiling load function")
    assert proc.value("tostring(apm.installed['@sam/broken'])") == "nil"
    res = proc.send(APM_ID, "zz-not-hex", [("Result", "success"), ("Name", "@sam/x"), ("Version", "1.0.0")],
                    action="APM.DownloadResponse")
    assert "package source is not valid hex" in _printed(res)


def test_apm_follows_the_registry_tag_of_the_process():
    pytest.importorskip("aos_py.runtime", reason="aos_py is not importable here (install the project with `make venv`)")
    local_registry = "LOCAL-REGISTRY-PROCESS-ID-11111111111111111"
    env = {"Process": {"Id": PID, "Owner": OWNER, "Tags": ENV["Process"]["Tags"] + [
        {"name": "APM-Registry", "value": local_registry}]}}
    p = Proc(env)
    try:
        assert p.value("apm.ID") == local_registry
        assert p.eval('apm.install("x")')["Messages"][0]["Target"] == local_registry
        res = p.download("@apm/x", "1.0.0", "return 1")  # from the 2.0.4 registry: refused
        assert "Attempt to download from illegal source" in _printed(res)
        res = p.download("@apm/x", "1.0.0", "return 1", sender=local_registry)
        assert "✅ Downloaded @apm/x@1.0.0" in _printed(res)
    finally:
        p.rt.close()
