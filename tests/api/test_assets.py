"""How every page's assets are served (api.assets.PageAssets): one caching rule, the page's headers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.assets import PageAssets


def test_vendored_folders_are_immutable_own_files_revalidated_and_the_worker_gets_its_scope(tmp_path):
    (tmp_path / "leaflet-1.9.4").mkdir()
    (tmp_path / "leaflet-1.9.4" / "leaflet.js").write_text("//")
    for name in ("tasks-common.js", "sw.js"):
        (tmp_path / name).write_text("//")
    app = FastAPI()
    app.mount("/s", PageAssets(tmp_path, {"Content-Security-Policy": "default-src 'self'"}, "/tasks"))
    client = TestClient(app)
    vendored, own, worker = (
        client.get(f"/s/{p}") for p in ("leaflet-1.9.4/leaflet.js", "tasks-common.js", "sw.js")
    )
    assert vendored.headers["cache-control"] == "public, max-age=604800, immutable"
    assert own.headers["cache-control"] == "no-cache"  # a hyphen in a page's own file is no version
    assert (
        worker.headers["service-worker-allowed"] == "/tasks" and "service-worker-allowed" not in own.headers
    )
    for answer in (vendored, own, worker):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == "default-src 'self'"
