"""The words people read for the case workflow: status groups of the dispatcher's queue and the
Chinese names (with the English key beside them) of statuses, stages, sources, tiers and lights.

Defined once here; the workbench pages and the JSON queue (`GET /queue`) both use them.
"""

from __future__ import annotations

from dataclasses import dataclass

from cases.lifecycle import CaseStatus, Rating, Source, Tier

S = CaseStatus


@dataclass(frozen=True)
class StatusGroup:
    """A column of the dispatcher's work (待核实 … 已结案): the statuses it gathers."""

    key: str
    label: str  # Chinese
    label_en: str
    statuses: tuple[CaseStatus, ...]


# The queue's groups, in the order of the work (受理→立案→派遣→处置→核查→结案→回访).
STATUS_GROUPS: tuple[StatusGroup, ...] = (
    StatusGroup("verify", "待核实", "to verify", (S.REPORTED,)),
    StatusGroup("file", "待立案", "to file", (S.VERIFIED,)),
    StatusGroup("dispatch", "待派遣", "to dispatch", (S.FILED, S.RETURNED)),
    StatusGroup(
        "handle",
        "处置中",
        "being handled",
        (S.DISPATCHED, S.REASSIGNED, S.ACCEPTED, S.IN_PROGRESS, S.EXTENDED, S.SUSPENDED),
    ),
    StatusGroup("check", "待核查", "to check", (S.HANDLED, S.CHECKED)),
    StatusGroup("revisit", "待回访", "to revisit", (S.CLOSED,)),
    StatusGroup("done", "已结案", "finished", (S.REVISITED, S.VOIDED, S.MERGED)),
)
GROUPS_BY_KEY = {g.key: g for g in STATUS_GROUPS}
GROUP_OF_STATUS = {s: g.key for g in STATUS_GROUPS for s in g.statuses}
# The groups a dispatcher still has work in: the queue's default and its "open" count.
OPEN_GROUPS = tuple(g.key for g in STATUS_GROUPS if g.key != "done")
assert set(GROUP_OF_STATUS) == set(CaseStatus), "every status belongs to exactly one group"

STATUS_LABELS: dict[str, str] = {
    S.REPORTED: "已上报", S.VERIFIED: "已核实", S.FILED: "已立案", S.DISPATCHED: "已派遣",
    S.ACCEPTED: "已受理", S.IN_PROGRESS: "处置中", S.HANDLED: "已处置", S.CHECKED: "已核查",
    S.CLOSED: "已结案", S.REVISITED: "已回访", S.RETURNED: "已回退", S.REASSIGNED: "已改派",
    S.EXTENDED: "已延期", S.SUSPENDED: "缓办", S.VOIDED: "已作废", S.MERGED: "已合并",
}  # fmt: skip

# A move is named for what the person does (the button), not for the status it leads to.
MOVE_LABELS: dict[str, str] = {
    S.VERIFIED: "核实", S.FILED: "立案", S.DISPATCHED: "派遣", S.ACCEPTED: "受理",
    S.IN_PROGRESS: "开始处置", S.HANDLED: "处置完毕", S.CHECKED: "核查通过", S.CLOSED: "结案",
    S.REVISITED: "回访", S.RETURNED: "回退", S.REASSIGNED: "改派 / 吹哨", S.EXTENDED: "延期",
    S.SUSPENDED: "缓办", S.VOIDED: "作废", S.MERGED: "合并",
}  # fmt: skip
MOVE_LABELS_EN: dict[str, str] = {
    S.VERIFIED: "verify", S.FILED: "file", S.DISPATCHED: "dispatch", S.ACCEPTED: "accept",
    S.IN_PROGRESS: "start work", S.HANDLED: "handled", S.CHECKED: "check passed", S.CLOSED: "close",
    S.REVISITED: "revisit", S.RETURNED: "return", S.REASSIGNED: "reassign / summon",
    S.EXTENDED: "extend", S.SUSPENDED: "suspend", S.VOIDED: "void", S.MERGED: "merge",
}  # fmt: skip

STAGE_LABELS: dict[str, str] = {
    "verify": "核实", "file": "立案", "dispatch": "派遣", "accept": "受理", "handle": "处置",
    "check": "核查", "close": "结案", "revisit": "回访",
}  # fmt: skip

SOURCE_LABELS: dict[str, str] = {
    Source.PATROL: "网格员巡查", Source.CITIZEN: "群众上报", Source.HOTLINE: "12345热线",
    Source.DEPARTMENT: "部门移交", Source.SENSOR: "感知设备",
}  # fmt: skip

TIER_LABELS: dict[str, str] = {
    Tier.GRID: "网格", Tier.COMMUNITY: "社区/村", Tier.STREET: "街道/乡镇", Tier.COUNTY: "县级",
    Tier.DEPARTMENT: "部门",
}  # fmt: skip

LIGHT_LABELS: dict[str, str] = {"green": "绿灯", "yellow": "黄灯", "red": "红灯"}

RATING_LABELS: dict[str, str] = {
    Rating.SATISFIED: "满意", Rating.BASICALLY_SATISFIED: "基本满意", Rating.UNSATISFIED: "不满意",
}  # fmt: skip


def statuses_of_groups(keys: list[str]) -> list[str]:
    """The stored statuses of the named groups (unknown keys: KeyError with the key)."""
    return [s.value for key in keys for s in GROUPS_BY_KEY[key].statuses]
