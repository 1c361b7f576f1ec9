/* "My location" (我的位置) on phones: the browser's position with its accuracy circle.
 *
 * Leaflet's map.locate does the geolocation; nothing leaves the page (the position is not sent).
 */
(function () {
  'use strict';
  var GridMap = window.GridMap;

  function phone(map) {
    return GridMap.narrow(map) || (window.matchMedia && window.matchMedia('(pointer: coarse)').matches);
  }

  /** A button (top left) that centres the map on the phone's position. */
  GridMap.locateControl = function (map, info) {
    if (!phone(map)) return;
    var shown = L.layerGroup().addTo(map);
    var control = L.control({ position: 'topleft' });
    control.onAdd = function () {
      var button = GridMap.el('button', 'gm-panel gm-locate', '◎ 我的位置');
      button.type = 'button';
      button.title = '我的位置 My location';
      button.setAttribute('aria-label', '我的位置 My location');
      L.DomEvent.disableClickPropagation(button);
      button.addEventListener('click', function () {
        map.locate({ setView: true, maxZoom: 17, enableHighAccuracy: true, timeout: 15000 });
      });
      return button;
    };
    control.addTo(map);
    map.on('locationfound', function (e) {
      shown.clearLayers();
      L.circle(e.latlng, { radius: e.accuracy, color: '#1f78b4', weight: 1, fillOpacity: 0.12, interactive: false })
        .addTo(shown);
      L.circleMarker(e.latlng, { radius: 7, color: '#fff', weight: 2, fillColor: '#1f78b4', fillOpacity: 1 })
        .bindTooltip('我的位置 my location ±' + Math.round(e.accuracy) + ' m').addTo(shown);
      GridMap.myLocation = { lat: e.latlng.lat, lng: e.latlng.lng, accuracy: e.accuracy };
    });
    map.on('locationerror', function (e) {
      info.note('无法定位 location unavailable: ' + e.message, 'gm-error');
    });
  };
}());
