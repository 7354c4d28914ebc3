"""Messages to one test process and booted ProcessRuntimes for it, shared by the
runtime tests so that each file only names its own ids and tags."""

from __future__ import annotations

from collections.abc import Iterator

from aos_py.runtime import ProcessRuntime


class ProcessHarness:
    """A process id, owner and Name/Module tags; builds the messages a test sends it."""

    def __init__(self, *, pid: str, owner: str, name: str, module: str, msg_id: str, block_height: str,
                 boot_block_height: str | None = None, boot_tags: bool = True) -> None:
        # msg_id: message n gets Id msg_id + str(n); the boot message (n = 0) gets the process id.
        # boot_block_height / boot_tags: whether the boot message carries its own height and the
        # process's Name/Module tags (one test file boots with them, the other without).
        self.pid, self.owner, self.module = pid, owner, module
        self.msg_id, self.block_height = msg_id, block_height
        self.boot_block_height, self.boot_tags = boot_block_height, boot_tags
        self.env = {"Process": {"Id": pid, "Owner": owner, "Tags": [
            {"name": "Name", "value": name}, {"name": "Module", "value": module}]}}

    def msg(self, n: int, data: str | bytes | None = None, action: str | None = "Eval", sender: str | None = None,
            tags: list[tuple[str, str]] = (), **extra) -> dict:
        """Message n to the process (Action tag first, then `tags`); `extra` sets root keys."""
        sender = self.owner if sender is None else sender
        m = {"Id": f"{self.msg_id}{n}", "Target": self.pid, "Owner": sender, "From": sender, "Module": self.module,
             "Block-Height": self.block_height, "Timestamp": 1700000000000 + n,
             "Tags": ([{"name": "Action", "value": action}] if action else []) + [{"name": k, "value": v} for k, v in tags]}
        if data is not None:
            m["Data"] = data
        m.update(extra)
        return m

    def boot_message(self, **extra) -> dict:
        """The process's first message (its spawn), whose Id is the process id."""
        m = self.msg(0, action=None, **extra)
        m["Id"] = self.pid
        if self.boot_block_height is not None:
            m["Block-Height"] = self.boot_block_height
        if self.boot_tags:
            m["Tags"] = list(self.env["Process"]["Tags"])
        return m

    def booted(self, **kwargs) -> ProcessRuntime:
        """A ProcessRuntime(**kwargs) that has handled the boot message without error."""
        rt = ProcessRuntime(**kwargs)
        res = rt.handle(self.boot_message(), self.env)
        assert "Error" not in res, res.get("Error")
        return rt

    def running(self) -> Iterator[ProcessRuntime]:
        """Body of an `rt` fixture: a booted runtime, closed after the test."""
        runtime = self.booted()
        yield runtime
        runtime.close()

    def eval(self, rt: ProcessRuntime, code: str, n: int = 1) -> dict:
        """The result of evaluating `code` as message n."""
        return rt.handle(self.msg(n, code), self.env)


def output_data(res: dict) -> str:
    """Output.data of a result that must not be an error."""
    assert "Error" not in res, res.get("Error")
    return res["Output"]["data"]
