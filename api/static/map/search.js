/* The live map's search box: units by code or name; the one found is fitted and outlined, the
 * outline cleared by the × button or Esc. Moved out of gridmap.js (a module stays under 500 lines).
 */
(function () {
  'use strict';
  var GridMap = window.GridMap;
  var el = GridMap.el, getJson = GridMap.getJson, LEVEL_NAMES = GridMap.LEVEL_NAMES;

  // ------------------------------------------------------------------ search
  /** The search control (top left); `highlight(code)` outlines a unit, `highlight.clear()` removes it. */
  GridMap.searchControl = function (map, highlight) {
    var control = L.control({ position: 'topleft' });
    control.onAdd = function () {
      var box = el('div', 'gm-panel gm-search');
      var input = el('input');
      input.type = 'search';
      input.placeholder = '搜索网格编码或名称 Search code or name';
      input.setAttribute('aria-label', 'Search units by code or name');
      var results = el('ul', 'gm-list gm-results');
      var clear = el('button', 'gm-clear', '×');
      clear.type = 'button';
      clear.title = '清除搜索 Clear search';
      clear.setAttribute('aria-label', '清除搜索 Clear search');
      clear.addEventListener('click', function () {
        input.value = '';
        results.textContent = '';
        found = [];
        highlight.clear();
        input.focus();
      });
      box.appendChild(input);
      box.appendChild(clear);
      box.appendChild(results);
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      var timer = null, found = [];
      function go(unit) {
        results.textContent = '';
        var b = unit.bbox;  // [minlon, minlat, maxlon, maxlat], WGS84
        map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { maxZoom: 17 });
        highlight(unit.code);
      }
      function show(units) {
        found = units;
        results.textContent = '';
        units.forEach(function (u) {
          var item = el('li');
          item.dataset.code = u.code;
          item.appendChild(el('strong', null, u.name));
          item.appendChild(el('span', 'gm-mono', ' ' + u.code));
          item.appendChild(el('span', 'gm-muted', ' ' + (LEVEL_NAMES[u.level] || u.level)));
          item.addEventListener('click', function () { go(u); });
          results.appendChild(item);
        });
        if (!units.length) results.appendChild(el('li', 'gm-muted', '无结果 nothing found'));
      }
      input.addEventListener('input', function () {
        clearTimeout(timer);
        var q = input.value.trim();
        if (!q) { results.textContent = ''; return; }
        timer = setTimeout(function () {
          getJson('/map/search?q=' + encodeURIComponent(q)).then(function (body) {
            if (input.value.trim() === q) show(body.units);
          });
        }, 200);
      });
      input.addEventListener('keydown', function (e) {
        if (e.key === 'Escape') clear.click();
        if (e.key === 'Enter' && found.length) go(found[0]);
      });
      return box;
    };
    control.addTo(map);
  };

  /** An outliner of units: one outline at a time. */
  GridMap.outline = function (map) {
    var current = null;
    function show(code) {
      getJson('/grids/' + encodeURIComponent(code)).then(function (feature) {
        show.clear();
        current = L.geoJSON(feature, {
          interactive: false,
          style: { color: '#d62728', weight: 3, fill: false, dashArray: '6 4' }
        }).addTo(map);
        GridMap.outlined = code;
      });
    }
    show.clear = function () {
      if (current) map.removeLayer(current);
      current = null;
      GridMap.outlined = null;
    };
    return show;
  };

}());
