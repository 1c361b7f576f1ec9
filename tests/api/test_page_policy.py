"""Every page the service serves runs under the one strict policy (api.page_policy) plus only what it adds."""

from __future__ import annotations

import pytest

from api.page_policy import STRICT, content_security_policy, page_headers

# Each page and what it may add to the strict policy (and why: see the page's module).
PAGES = {
    "/report": {"img-src": "'self' blob:"},
    "/tasks": {"img-src": "'self' blob:"},
    "/dashboard": {"img-src": "'self' data:"},
    "/plan": {"style-src": "'self' 'unsafe-inline'", "img-src": "'self' data: blob:"},
    "/login": {},
    "/docs": {"img-src": "'self' data:"},
    "/redoc": {
        "img-src": "'self' data:",
        "style-src": "'self' 'unsafe-inline'",
        "worker-src": "'self' blob:",
    },
}


def directives(header: str) -> dict[str, str]:
    """A policy header as directive -> sources."""
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


def test_a_policy_is_the_strict_one_with_the_pages_additions():
    assert directives(content_security_policy()) == STRICT
    extended = directives(content_security_policy({"img-src": "'self' blob:"}))
    assert extended["img-src"] == "'self' blob:" and extended["script-src"] == "'self'"
    headers = page_headers(cache="no-store")
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", sorted(PAGES))
def test_each_page_runs_under_the_strict_policy_with_only_its_own_additions(client, path):
    page = client.get(path, follow_redirects=False)
    assert page.status_code == 200, (path, page.status_code)
    policy = directives(page.headers["content-security-policy"])
    assert policy == STRICT | PAGES[path], path
    assert "unsafe-eval" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
