"""The navigation table (access/navigation.py) pinned by hand, and checked against the routes' rule
table: every page offered to a role is one that role may open."""

from __future__ import annotations

import pytest

from access.navigation import navigation
from access.roles import Role, User
from api.access import RULES

# What each role's header offers, home first: written out here, not read from the table.
EXPECTED: dict[str, list[str]] = {
    "admin": ["/desk", "/map", "/plan", "/dashboard", "/desk/keys"],
    "planner": ["/plan", "/map", "/dashboard", "/desk/keys"],
    "dispatcher": ["/desk", "/map", "/dashboard", "/desk/keys"],
    "field_worker": ["/tasks", "/map", "/desk/keys"],
    "department": ["/desk", "/tasks", "/map", "/desk/keys"],
    "viewer": ["/desk", "/map", "/dashboard", "/desk/keys"],
}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_is_offered_the_pages_made_for_it(role: Role):
    user = User(1, "someone", role, "411681", "cgj" if role == Role.DEPARTMENT else None)
    assert [link.path for link in navigation(user)] == EXPECTED[role.value]


def test_a_planner_has_no_case_queue_and_a_dispatcher_has_no_plan_editor():
    planner, dispatcher = (User(1, "u", role, "411681") for role in (Role.PLANNER, Role.DISPATCHER))
    assert "/desk" not in {link.path for link in navigation(planner)}
    assert "/plan" not in {link.path for link in navigation(dispatcher)}


@pytest.mark.parametrize("role", list(Role))
def test_every_page_offered_is_one_the_role_may_open(role: Role):
    user = User(1, "someone", role, "411681", "cgj" if role == Role.DEPARTMENT else None)
    for link in navigation(user):
        rule = RULES[("GET", link.path)]
        assert rule.page, link.path  # a page, not an API route
        assert rule.permission is None or user.can(rule.permission), (role, link.path)


def test_every_link_has_a_chinese_and_an_english_name():
    for links in (navigation(User(1, "u", role, "411681")) for role in Role):
        assert all(link.name and link.name_en and link.name != link.name_en for link in links)
