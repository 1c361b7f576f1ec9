/* Boundaries change on every open map: poll the boundary generation (GET /map/boundaries, a tiny
 * answer) and, when it moved, put the new number in the unit tiles' URL and redraw them. A new URL
 * is never answered from a cache, so no browser or proxy shows the old boundaries. Used by the live
 * map (gridmap.js) and the planner's editor. */
(function () {
  'use strict';

  var DEFAULT_POLL_S = 4;

  /** Call `changed(generation)` whenever the boundary generation moves on from `initial` (null:
   * from the first answer); returns a stop function. With a known start, the first question waits
   * a poll interval: nothing competes with the page's first tiles. */
  function watch(changed, initial) {
    var known = initial === undefined ? null : initial, timer = null, stopped = false;
    function tick() {
      fetch('/map/boundaries', { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body) return DEFAULT_POLL_S;
          if (known !== null && body.generation !== known) changed(body.generation);
          known = body.generation;
          return body.poll_s || DEFAULT_POLL_S;
        })
        .catch(function () { return DEFAULT_POLL_S; })
        .then(function (poll) { if (!stopped) timer = setTimeout(tick, (poll || DEFAULT_POLL_S) * 1000); });
    }
    if (known === null) tick(); else timer = setTimeout(tick, DEFAULT_POLL_S * 1000);
    return function () { stopped = true; clearTimeout(timer); };
  }

  window.GridMapBoundaries = { watch: watch };

  if (window.GridMap) {
    /** The live map's unit tiles follow the boundary generation. */
    window.GridMap.watchBoundaries = function (units) {
      watch(function (generation) {
        units.options.g = generation;
        Object.keys(window.GridMap.drawn).forEach(function (level) { window.GridMap.drawn[level].clear(); });
        units.redraw();
        window.GridMap.boundaryGeneration = generation;
      }, units.options.g);
    };
  }
}());
