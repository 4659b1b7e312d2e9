"""A station configuration with an IFSF LAN: a Censtar TQC node and a DIT dispenser."""

from __future__ import annotations

from pathlib import Path


def ifsf_station_toml(*, db: Path | str = "/tmp/station.db", api_port: int = 8080,
                      udp_port: int = 3486, listen_port: int = 0,
                      heartbeat_to: str = "127.255.255.255", interval: int = 1,
                      extra_line: str = "", tqc_node: int = 1, dit_nodes: str = "[11, 12]",
                      authorize: str = "attendant") -> str:
    return f"""
[station]
id = "XJ-IFSF-0001"
name = "测试加油站"
timezone = "Asia/Shanghai"

[storage]
path = "{db}"

[api]
listen = "127.0.0.1:{api_port}"

[[grades]]
code = "92"
name = "92号汽油"
price = "7.50"

[[grades]]
code = "95"
name = "95号汽油"
price = "8.00"

[[lines]]
id = "lan1"
protocol = "ifsf"
node = 1
udp_port = {udp_port}
heartbeat_interval_seconds = {interval}
heartbeat_to = "{heartbeat_to}"
listen = "127.0.0.1:{listen_port}"
reply_timeout_ms = 2000
{extra_line}

[[lines.products]]
grade = "92"
number = 92

[[lines.products]]
grade = "95"
number = 95

[[pumps]]
number = 1
line = "lan1"
node = {tqc_node}
fuelling_point = 1
authorize = "{authorize}"
[[pumps.nozzles]]
number = 1
logical = 1
grade = "92"
[[pumps.nozzles]]
number = 2
logical = 2
grade = "95"

[[pumps]]
number = 2
line = "lan1"
node = {tqc_node}
fuelling_point = 2
authorize = "{authorize}"
[[pumps.nozzles]]
number = 3
logical = 1
grade = "92"

[[pumps]]
number = 3
line = "lan1"
nodes = {dit_nodes}
authorize = "{authorize}"
[[pumps.nozzles]]
number = 4
logical = 1
grade = "92"
[[pumps.nozzles]]
number = 5
logical = 2
grade = "95"
"""
