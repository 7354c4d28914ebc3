"""pytest plugin of aos-py (entry point `pytest11`): the `aos_node` fixture.

    def test_ping(aos_node):
        aos_node.spawn_process("pong", 'Handlers.add("ping", "Ping", function(m) m.reply({Action = "Pong"}) end)',
                               {"On-Boot": "Data"})
        aos_node.spawn_process("sender")
        aos_node.send({"From": "sender", "Target": "pong", "Action": "Ping"})
        assert aos_node.get_last_msg("sender")["Action"] == "Pong"

Each test gets a fresh in-memory AO node (aos_py/testing/node.py: aolite's operations from Python),
whose current directory for module paths is the test's working directory.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def aos_node():
    """A fresh in-memory AO node with aolite's API (spawn_process, send, eval, get_last_msg, ...)."""
    from aos_py.testing.node import AosNode

    node = AosNode()
    try:
        yield node
    finally:
        node.close()
