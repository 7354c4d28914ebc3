"""Replay aos compatibility cases through the runtime.

`run_case(case)` follows the replay contract of the compatibility vectors: a
fresh process gets the case's boot (spawn) message and then each message, all
with the case's env; the state carries over between calls as in a bare
`handle` loop. A call that fails (HandleError) is recorded as
`{"thrown": text}` and the process goes on from the state before that message,
rebuilt by replaying the messages that did not fail.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

from aos_py.runtime import HandleError, ProcessRuntime

RESULT_KEYS = ("Output", "Error", "Messages", "Spawns", "Assignments")


def run_case(case: dict, runtime_factory: Callable[[], ProcessRuntime] = ProcessRuntime) -> Iterator[dict]:
    """Yield one raw result per step (boot first) of a compatibility case."""
    env = case["env"]
    steps = [case["boot"], *case.get("messages", [])]
    applied: list[dict] = []
    rt = runtime_factory()
    try:
        for msg in steps:
            try:
                res = rt.handle(copy.deepcopy(msg), copy.deepcopy(env))
            except HandleError as exc:
                yield {"thrown": str(exc)}
                rt.close()
                rt = runtime_factory()
                for done in applied:
                    try:
                        rt.handle(copy.deepcopy(done), copy.deepcopy(env))
                    except HandleError:
                        pass
                continue
            applied.append(msg)
            yield {k: res[k] for k in RESULT_KEYS if k in res}
    finally:
        rt.close()
