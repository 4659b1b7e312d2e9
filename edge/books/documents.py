"""The books on paper: the delivery slip (卸油验收单), the month's 进销存 and an account's
monthly statement (挂账对账单). Chinese, in the order a station person checks them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drivers.printer.document import Align, Document, Feed, Line, Pair, Rule, Size, Text
from edge.books.delivery import OUTCOMES

_SOURCES = {"gauge": "液位仪", "entered": "人工录入"}


def _time(text: str | None) -> str:
    return "-" if not text else text[:19].replace("T", " ")


def delivery_slip(receipt: Mapping[str, Any], *, station_name: str,
                  grade_names: Mapping[str, str]) -> Document:
    bill, before, after = receipt["bill"], receipt["before"], receipt["after"]
    found = receipt["figures"]
    lines: list[Line] = [
        Text(station_name, align=Align.CENTER, bold=True),
        Text("卸油验收单", align=Align.CENTER, bold=True, size=Size.TALL),
        Pair("单号", receipt["id"][-12:]),
        Pair("油罐", f"{receipt['tank']}号罐"),
        Pair("油品", grade_names.get(receipt["grade"], receipt["grade"])),
        Pair("验收时间", _time(receipt["closed_at"])),
        Rule(),
        Pair("提货单号", bill["number"]),
        Pair("车牌", bill["truck"]),
        Pair("铅封号", "、".join(bill["seals"]) or "-"),
        Pair("发油量(升)", bill["volume_l"]),
        Pair("标准密度(kg/m3)", bill["density20"]),
        Pair("发油温度(℃)", bill["temperature_c"] or "20"),
        Pair("发油标准体积(升)", found["shipped_std_l"]),
        Rule(),
        Pair("卸前油量(升)", before["volume_l"]),
        Pair("卸前油温(℃)", before["temperature_c"] or "-"),
        Pair("卸前来源", _SOURCES.get(before["source"], before["source"])),
        Pair("卸后油量(升)", after["volume_l"]),
        Pair("卸后油温(℃)", after["temperature_c"] or "-"),
        Pair("卸后来源", _SOURCES.get(after["source"], after["source"])),
    ]
    for which, reading in (("卸前", before), ("卸后", after)):
        if reading.get("reason"):
            lines.append(Text(f"{which}人工录入原因：{reading['reason']}"))
    if found["sold_during_l"] != "0.00":
        lines.append(Pair("卸油期间销售(升)", found["sold_during_l"]))
    lines += [
        Pair("实收油量(升)", found["received_l"]),
        Pair("实收标准体积(升)", found["received_std_l"]),
        Rule(),
        Pair("损耗(升)", found["loss_l"], bold=True),
        Pair("损耗率(%)", found["loss_rate_percent"], bold=True),
        Pair("允许损耗率(%)", found["threshold_percent"]),
        Text(f"结论：{OUTCOMES.get(receipt['outcome'], receipt['outcome'])}", bold=True),
    ]
    if found["beyond_threshold"]:
        lines.append(Text("** 超出允许损耗 **", bold=True))
    if receipt.get("note"):
        lines.append(Text(f"备注：{receipt['note']}"))
    lines += [
        Rule(),
        Pair("驾驶员", receipt["driver"] or "-"),
        Pair("验收员", receipt["receiver"] or "-"),
        Pair("监卸人", receipt["supervisor"] or "-"),
        Feed(1),
        Text("驾驶员签字：________________"),
        Feed(1),
        Text("验收员签字：________________"),
    ]
    return Document(lines=tuple(lines))


def month_document(body: Mapping[str, Any], *, station_name: str) -> Document:
    lines: list[Line] = [
        Text(station_name, align=Align.CENTER, bold=True),
        Text(f"{body['month']} 进销存", align=Align.CENTER, bold=True, size=Size.TALL),
        Pair("月结人", str(body.get("closed_by") or "-")),
        Pair("月结时间", _time(body.get("closed_at"))),
    ]

    def figures(line: Mapping[str, Any]) -> None:
        lines.extend([
            Pair("期初库存(升)", line["opening_l"]),
            Pair("进油(升)", line["received_l"]),
            Pair("销售(升)", line["sold_l"]),
            Pair("销售金额(元)", line["sold_amount"]),
            Pair("自用(升)", line["own_use_l"]),
            Pair("倒罐 出/入(升)", f"{line['transfer_out_l']}/{line['transfer_in_l']}"),
            Pair("自检回罐(升)", line["returned_l"]),
            Pair("调整(升)", line["adjustments_l"]),
            Pair("账面库存(升)", line["book_closing_l"]),
            Pair("实测库存(升)", line["closing_l"] or "-"),
            Pair("损耗(升)", line["loss_l"] or "-", bold=True),
            Pair("损耗率(%)", line["loss_rate_percent"] or "-"),
            Pair("允许损耗(升)", line["allowance_l"]),
        ])
        if line["within_allowance"] is False:
            lines.append(Text("** 超出允许损耗 **", bold=True))

    for line in body["tanks"]:
        lines += [Rule(), Text(f"{line['tank']}号罐  {line['grade_name']}", bold=True)]
        figures(line)
    for line in body["grades"]:
        lines += [Rule("="), Text(f"{line['grade_name']} 合计", bold=True)]
        figures(line)
    return Document(lines=tuple(lines))


def statement_document(body: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *,
                       station_name: str) -> Document:
    account = body["account"]
    lines: list[Line] = [
        Text(station_name, align=Align.CENTER, bold=True),
        Text("挂账对账单", align=Align.CENTER, bold=True, size=Size.TALL),
        Pair("单位", account["name"]),
        Pair("账户", account["id"]),
        Pair("月份", body["month"]),
        Rule(),
    ]
    for row in rows:
        lines += [Text(f"{_time(row['ended_at'])}  {row['nozzle']}号枪 {row['grade']}"),
                  Pair(f"{row['volume']}升 x {row['price']}", row["amount"]),
                  Pair("签字人", row["signer"])]
    lines += [Rule(), Pair(f"合计 {body['count']} 笔", body["amount"], bold=True),
              Pair("合计升数", body["volume"])]
    return Document(lines=tuple(lines))
