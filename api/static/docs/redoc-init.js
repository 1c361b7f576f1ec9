/* Starts ReDoc on the service's OpenAPI document (instead of FastAPI's inline script, which the
 * pages' Content-Security-Policy would block). */
(function () {
  'use strict';
  var root = document.getElementById('redoc');
  Redoc.init(root.getAttribute('data-openapi-url'), { hideDownloadButton: false }, root);
})();
