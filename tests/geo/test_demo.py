"""The demo county loads completely, at the article's scale, and a second load changes nothing."""

from __future__ import annotations

from sqlalchemy import text

from services.imports import load_demo


def test_demo_county_has_the_articles_scale(demo_session):
    levels = dict(demo_session.execute(text("SELECT level, count(*) FROM units GROUP BY level")).all())
    assert levels == {"county": 1, "street": 21, "community": 501, "grid": 2619, "micro_grid": 276}
    kinds = dict(
        demo_session.execute(
            text(
                "SELECT kind, count(*) FROM unit_versions v JOIN units u USING (code)"
                " WHERE u.level = 'grid' GROUP BY kind"
            )
        ).all()
    )
    assert kinds == {"urban": 473, "rural": 1843, "special": 303}
    staff = dict(demo_session.execute(text("SELECT role, count(*) FROM staff GROUP BY role")).all())
    assert staff["grid_chief"] == 501 and staff["full_time"] == 2322 and staff["volunteer"] == 8566
    party = dict(demo_session.execute(text("SELECT kind, count(*) FROM party_cells GROUP BY kind")).all())
    assert party == {"branch": 501, "group": 2478, "central_household": 4422, "instructor": 74}


def test_demo_names_and_codes_are_the_real_ones(demo_session):
    names = dict(
        demo_session.execute(
            text("SELECT code, name FROM unit_versions WHERE code IN ('411681', '411681001', '411681114')")
        ).all()
    )
    assert names == {"411681": "项城市", "411681001": "花园街道", "411681114": "永丰镇"}


def test_demo_boundaries_nest_without_warnings(demo_session):
    warned = demo_session.execute(
        text("SELECT count(*) FROM unit_versions WHERE warnings <> '[]'")
    ).scalar_one()
    assert warned == 0
    # The streets tile the real county: same area to the square metre.
    county, streets = demo_session.execute(
        text(
            """SELECT (SELECT ST_Area(geom::geography) FROM unit_versions WHERE code = '411681'),
                      (SELECT sum(ST_Area(v.geom::geography)) FROM unit_versions v JOIN units u USING (code)
                       WHERE u.level = 'street')"""
        )
    ).one()
    assert abs(county - streets) < 1.0 and 1.08e9 < county < 1.11e9


def test_loading_the_demo_again_changes_nothing(demo_session, settings):
    before = demo_session.execute(
        text("SELECT (SELECT count(*) FROM unit_versions), (SELECT count(*) FROM staff)")
    ).one()
    summary = load_demo(demo_session, settings, progress=lambda m: None)
    assert (summary.created, summary.versioned, summary.staff) == (0, 0, 0) and summary.unchanged == 3418
    after = demo_session.execute(
        text("SELECT (SELECT count(*) FROM unit_versions), (SELECT count(*) FROM staff)")
    ).one()
    assert before == after


def test_every_demo_grid_is_served(demo_client, demo_session):
    features = demo_client.get("/grids").json()["features"]
    assert len(features) == 2619
    central = demo_session.execute(
        text(
            "SELECT ST_X(location), ST_Y(location), unit_code FROM party_cells"
            " WHERE kind = 'central_household' LIMIT 20"
        )
    ).all()
    for lon, lat, grid in central:  # a central household lies inside its grid (or a special grid over it)
        answer = demo_client.get("/locate", params={"lon": lon, "lat": lat, "crs": "cgcs2000"}).json()
        assert grid in answer["covering"]
