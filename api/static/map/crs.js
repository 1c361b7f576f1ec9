/* The GCJ-02 coordinate system of Amap-style background tiles, for the live map (before gridmap.js).
 *
 * Moved out of gridmap.js unchanged (a module stays under 500 lines).
 */
(function () {
  'use strict';

  // ------------------------------------------------------------------ GCJ-02 (Amap-style tiles)
  // The published forward formula, as geo/crs.py has it (a browser test pins the two together).
  // Data stays WGS84 everywhere; on a GCJ-02 background the map's CRS moves it when drawing.
  var GCJ_A = 6378245.0;
  var GCJ_EE = 0.00669342162296594323;

  function gcjDLat(x, y) {
    var r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin(y / 3.0 * Math.PI)) * 2.0 / 3.0;
    r += (160.0 * Math.sin(y / 12.0 * Math.PI) + 320.0 * Math.sin(y * Math.PI / 30.0)) * 2.0 / 3.0;
    return r;
  }

  function gcjDLon(x, y) {
    var r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin(x / 3.0 * Math.PI)) * 2.0 / 3.0;
    r += (150.0 * Math.sin(x / 12.0 * Math.PI) + 300.0 * Math.sin(x / 30.0 * Math.PI)) * 2.0 / 3.0;
    return r;
  }

  function wgs84ToGcj02(lon, lat) {
    if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lon, lat];
    var dlat = gcjDLat(lon - 105.0, lat - 35.0);
    var dlon = gcjDLon(lon - 105.0, lat - 35.0);
    var radlat = lat / 180.0 * Math.PI;
    var magic = 1 - GCJ_EE * Math.sin(radlat) * Math.sin(radlat);
    var sqrtmagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((GCJ_A * (1 - GCJ_EE)) / (magic * sqrtmagic) * Math.PI);
    dlon = (dlon * 180.0) / (GCJ_A / sqrtmagic * Math.cos(radlat) * Math.PI);
    return [lon + dlon, lat + dlat];
  }

  function gcj02ToWgs84(lon, lat) {
    var wx = lon, wy = lat;
    for (var i = 0; i < 30; i++) {
      var f = wgs84ToGcj02(wx, wy), ex = f[0] - lon, ey = f[1] - lat;
      wx -= ex; wy -= ey;
      if (Math.abs(ex) < 1e-11 && Math.abs(ey) < 1e-11) break;
    }
    return [wx, wy];
  }

  var mercator = L.Projection.SphericalMercator;
  L.CRS.GCJ02 = L.extend({}, L.CRS.EPSG3857, {
    code: 'GCJ02',
    projection: {
      bounds: mercator.bounds,
      project: function (latlng) {
        var g = wgs84ToGcj02(latlng.lng, latlng.lat);
        return mercator.project(L.latLng(g[1], g[0]));
      },
      unproject: function (point) {
        var g = mercator.unproject(point), w = gcj02ToWgs84(g.lng, g.lat);
        return L.latLng(w[1], w[0]);
      }
    }
  });

  // Leaflet 1.8 removed L.DomEvent.fakeStop, which VectorGrid 1.3 still calls on feature clicks.
  if (!L.DomEvent.fakeStop) L.DomEvent.fakeStop = function () { return true; };

  window.GridMapCrs = { wgs84ToGcj02: wgs84ToGcj02, gcj02ToWgs84: gcj02ToWgs84 };
}());
