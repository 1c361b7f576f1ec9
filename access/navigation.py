"""Which pages each role's navigation offers: the pages made for the role's work, in its order.

One table, read by every page that draws the header (api/templates/base.html), so a planner is
not offered a case queue they have no case to work in, and a dispatcher is offered no plan editor.
Each page's own access rule (api.access.RULES) still decides who may open it; the table only
chooses what to offer, and tests/access/test_navigation.py checks every offer is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from access.roles import Role, User


@dataclass(frozen=True)
class NavLink:
    """A page in the navigation: where, and its name in Chinese and English."""

    path: str
    name: str
    name_en: str


QUEUE = NavLink("/desk", "案件队列", "Queue")
TASKS = NavLink("/tasks", "我的任务", "My tasks")
MAP = NavLink("/map", "地图", "Map")
PLANS = NavLink("/plan", "网格规划", "Plan editor")
DASHBOARD = NavLink("/dashboard", "指挥大屏", "Command dashboard")
KEYS = NavLink("/desk/keys", "API 密钥", "API keys")

# The first page is the role's home (the header's brand links to it).
NAVIGATION: dict[Role, tuple[NavLink, ...]] = {
    Role.ADMIN: (QUEUE, MAP, PLANS, DASHBOARD, KEYS),
    Role.PLANNER: (PLANS, MAP, DASHBOARD, KEYS),
    Role.DISPATCHER: (QUEUE, MAP, DASHBOARD, KEYS),
    Role.FIELD_WORKER: (TASKS, MAP, KEYS),
    Role.DEPARTMENT: (QUEUE, TASKS, MAP, KEYS),
    Role.VIEWER: (QUEUE, MAP, DASHBOARD, KEYS),
}


def navigation(user: User | None) -> tuple[NavLink, ...]:
    """The pages the user's navigation offers, home first (a visitor: the map only)."""
    return NAVIGATION[user.role] if user is not None else (MAP,)
