"""The API docs served by the service: the OpenAPI document's sign-in, and pages with local assets only."""

from __future__ import annotations

import re

from api.access import RULES


def test_the_openapi_document_signs_in_with_the_password_flow_where_a_route_needs_it(client):
    schema = client.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["type"] == "oauth2" and scheme["flows"]["password"]["tokenUrl"] == "/auth/token"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            rule = RULES[(method.upper(), path)]
            needs_user = rule.permission is not None and rule.public_if is None
            assert ({} not in operation["security"]) == needs_user, (method, path)  # {}: anonymous too
    assert schema["paths"]["/stats/dashboard"]["get"]["security"] == [
        {"OAuth2PasswordBearer": []},
        {"SessionCookie": []},
    ]
    assert {} in schema["paths"]["/auth/token"]["post"]["security"]


def test_the_docs_pages_load_only_what_the_service_serves(client):
    for path, script in (("/docs", "swagger-init.js"), ("/redoc", "redoc-init.js")):
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "connect-src 'self'" in policy
        assert "<script>" not in page.text and "http" not in page.text  # no inline code, nothing remote
        assets = re.findall(r'(?:src|href)="(/static/docs/[^"]+)"', page.text)
        assert f"/static/docs/{script}" in assets
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
    assert "'unsafe-inline'" not in client.get("/docs").headers["content-security-policy"]
    # ReDoc alone needs styles written at run time and a worker from a blob (api/routes/docs.py).
    redoc = client.get("/redoc").headers["content-security-policy"]
    assert "style-src 'self' 'unsafe-inline'" in redoc and "worker-src 'self' blob:" in redoc


def test_the_dashboard_page_and_assets_are_the_services_own(client):
    page = client.get("/dashboard")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"] and "<script>" not in page.text
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert client.get(asset).status_code == 200, asset


def test_every_reference_in_the_openapi_document_resolves(client):
    import re

    document = client.get("/openapi.json").json()
    text_ = str(document)
    for ref in set(re.findall(r"'\$ref': '([^']+)'", text_)):
        assert ref.startswith("#/components/schemas/"), ref  # ReDoc fails on anything else
        assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"], ref
