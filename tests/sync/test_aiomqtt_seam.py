"""The one place forecourt reaches past aiomqtt's public API (sync/link.py, `_open`): dropping a
connection whose CONNACK never came, which aiomqtt 2 offers no public way to do. This test
fails on an aiomqtt release that no longer keeps its paho client where `_open` looks for it, so
a lock update to such a release (scripts/dev lock --upgrade) is caught here, not at a station
whose broker hangs. The behaviour itself is tested in test_link_session.py
(test_leaving_while_the_broker_never_answers_the_connect_is_prompt).
"""

from __future__ import annotations

import inspect

import aiomqtt
import paho.mqtt.client as paho

from sync import link


async def test_aiomqtt_keeps_its_paho_client_where_the_link_drops_a_half_open_connection() -> None:
    client = aiomqtt.Client("127.0.0.1", 1)
    inner = client._client
    assert isinstance(inner, paho.Client)
    # What _open uses of it: a settable disconnect callback and disconnect() itself.
    inner.on_disconnect = None
    assert callable(inner.disconnect)
    assert "client._client" in inspect.getsource(link.CloudLink._open)
