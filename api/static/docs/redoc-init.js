/* Starts ReDoc on the service's OpenAPI document (instead of FastAPI's inline script, which the
 * pages' Content-Security-Policy would block). */
(function () {
  'use strict';
  // ReDoc's sidebar always draws Redocly's logo from their CDN (no option turns it off, and the bundle
  // is vendored unchanged). The page asks nothing outside the service: that one image's address is
  // replaced by an empty data: URL before the browser sees it; it fails to load and ReDoc's own
  // onError handler takes the image away, leaving the "API docs by Redocly" credit as text.
  // Its renderer may set the address as an attribute or as the `src` property: both are covered.
  var CDN = 'https://cdn.redoc.ly/';
  function local(value) { return String(value).indexOf(CDN) === 0 ? 'data:,' : value; }
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    return setAttribute.call(this, name, this instanceof HTMLImageElement && name === 'src' ? local(value) : value);
  };
  var src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, 'src');
  Object.defineProperty(HTMLImageElement.prototype, 'src', {
    configurable: true, enumerable: src.enumerable, get: src.get,
    set: function (value) { src.set.call(this, local(value)); }
  });
  var root = document.getElementById('redoc');
  Redoc.init(root.getAttribute('data-openapi-url'), { hideDownloadButton: false }, root);
})();
