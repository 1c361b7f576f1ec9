/* Starts ReDoc on the service's OpenAPI document (instead of FastAPI's inline script, which the
 * pages' Content-Security-Policy would block). */
(function () {
  'use strict';
  // ReDoc's sidebar always draws Redocly's logo from their CDN (no option turns it off, and the bundle
  // is vendored unchanged). The page asks nothing outside the service: that one image's address is
  // replaced by an empty data: URL before the browser sees it; it fails to load and ReDoc's own
  // onError handler takes the image away, leaving the "API docs by Redocly" credit as text.
  var CDN = 'https://cdn.redoc.ly/';
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && name === 'src' && String(value).indexOf(CDN) === 0) {
      value = 'data:,';
    }
    return setAttribute.call(this, name, value);
  };
  var root = document.getElementById('redoc');
  Redoc.init(root.getAttribute('data-openapi-url'), { hideDownloadButton: false }, root);
})();
