"""The category table: the shipped file, inheritance of limits, lookups and broken files."""

from __future__ import annotations

import pytest

from cases.categories import (
    DEFAULT_CATEGORY_FILE,
    STAGES,
    CategoryTable,
    CategoryTableError,
    UnknownCategory,
)
from cases.worktime import TimeLimit

TABLE = CategoryTable.default()
HEADER = "code,name,name_en,parent," + ",".join(STAGES) + "\n"
TOP = "01,市容环境,City appearance,,1h,1h,1h,1h,1d,2h,1d,5d\n"


def write(tmp_path, text: str, header: str = HEADER):
    path = tmp_path / "categories.csv"
    path.write_text(header + text, encoding="utf-8")
    return path


def test_stages_are_the_lifecycle_clocks_in_order():
    assert STAGES == ("verify", "file", "dispatch", "accept", "handle", "check", "close", "revisit")


def test_the_shipped_table_has_the_standard_and_grid_governance_classes():
    names = {top.name for top in TABLE.top_classes()}
    assert {"市容环境", "宣传广告", "施工管理", "街面秩序", "突发事件", "市政设施"} <= names  # GB/T 30428.2
    assert {"矛盾纠纷", "社会治安", "安全隐患", "民生服务", "特殊人群服务", "劳动保障"} <= names
    subclasses = [category for category in TABLE if not category.is_top_class]
    assert 12 <= len(TABLE.top_classes()) <= 16
    assert 80 <= len(subclasses) <= 125
    for category in TABLE:
        assert set(category.limits) == set(STAGES)
        assert category.name and category.name_en
    for top in TABLE.top_classes():
        assert TABLE.children(top.code), f"{top.code} {top.name} has no subclasses"


def test_the_shipped_limits_match_the_domain_examples():
    assert TABLE.limit("0101", "handle") == TimeLimit(1, "working_days")  # exposed rubbish
    assert TABLE.limit("0109", "handle") == TimeLimit(15, "working_days")  # illegal construction
    assert TABLE.limit("0801", "handle") == TimeLimit(5, "working_days")  # neighbour dispute
    assert TABLE.limit("0503", "dispatch").unit == "minutes"  # gas leak: urgent


def test_a_subclass_inherits_blank_stages_and_overrides_the_others():
    top, gas_leak = TABLE.get("05"), TABLE.get("0503")
    assert gas_leak.parent == "05"
    assert gas_leak.limits["close"] == top.limits["close"]  # blank in the file
    assert gas_leak.limits["handle"] == TimeLimit(2, "working_hours") != top.limits["handle"]


def test_only_subclasses_are_assignable():
    assert TABLE.is_assignable("0101")
    assert not TABLE.is_assignable("01")
    assert not TABLE.is_assignable("0199")
    assert not TABLE.is_assignable("rubbish")


def test_children_and_top_classes_keep_file_order():
    codes = [child.code for child in TABLE.children("01")]
    assert codes == sorted(codes) and all(code.startswith("01") for code in codes)
    assert TABLE.children("0101") == []
    tops = [top.code for top in TABLE.top_classes()]
    assert tops == sorted(tops)


def test_an_unknown_code_is_a_key_error_that_helps():
    with pytest.raises(UnknownCategory, match="0101, 0102") as raised:
        TABLE.get("0199")
    assert isinstance(raised.value, KeyError)
    assert str(raised.value).startswith("unknown category '0199'")  # no KeyError quotes
    with pytest.raises(KeyError, match="top classes are 01 市容环境"):
        TABLE.get("9")
    with pytest.raises(UnknownCategory):
        TABLE.children("99")


def test_an_unknown_stage_lists_the_stages():
    with pytest.raises(ValueError, match="stages are verify, file"):
        TABLE.limit("0101", "cleanup")


def test_the_default_is_loaded_once():
    assert CategoryTable.default() is TABLE
    assert len(CategoryTable.load(DEFAULT_CATEGORY_FILE)) == len(TABLE)


def test_a_small_table_without_english_names(tmp_path):
    header = "code,name,parent," + ",".join(STAGES) + "\n"
    table = CategoryTable.load(
        write(tmp_path, "01,市容环境,,1h,1h,1h,1h,1d,2h,1d,5d\n0101,暴露垃圾,01,,,,,4h,,,\n", header)
    )
    assert table.get("0101").name_en == ""
    assert str(table.limit("0101", "handle")) == "4h"
    assert str(table.limit("0101", "revisit")) == "5d"


def test_a_subclass_may_come_before_its_top_class(tmp_path):
    table = CategoryTable.load(write(tmp_path, "0101,暴露垃圾,Exposed rubbish,01,,,,,,,,\n" + TOP))
    assert table.limit("0101", "handle") == TimeLimit(1, "working_days")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (TOP + TOP, "line 3: duplicate code 01"),
        (TOP + "0201,非法小广告,Small ads,02,,,,,,,,\n", "parent 02, which is not in the table"),
        (TOP + "0101,暴露垃圾,Exposed rubbish,01,,,,,1 day,,,\n", "line 3: .*stage handle: bad time"),
        ("01,市容环境,City appearance,,1h,1h,1h,1h,,2h,1d,5d\n", "must define every stage; missing handle"),
        (TOP + "0101,暴露垃圾,Exposed rubbish,02,,,,,,,,\n", "must have parent 01, not '02'"),
        (TOP + "011,暴露垃圾,Exposed rubbish,01,,,,,,,,\n", "bad code '011'"),
        ("01,市容环境,City appearance,00,1h,1h,1h,1h,1d,2h,1d,5d\n", "must not have a parent"),
        (TOP + "0101,,Exposed rubbish,01,,,,,,,,\n", "0101 has no name"),
    ],
)
def test_broken_tables_say_what_and_where(tmp_path, rows, message):
    with pytest.raises(CategoryTableError, match=message):
        CategoryTable.load(write(tmp_path, rows))


def test_a_table_needs_every_stage_column(tmp_path):
    header = "code,name,parent,verify,file,dispatch,accept,handel,check,close,revisit\n"
    with pytest.raises(ValueError, match="missing column"):
        CategoryTable.load(write(tmp_path, "", header))
