/* Starts Swagger UI on the service's OpenAPI document: the work FastAPI's default page does in an
 * inline script, which the pages' Content-Security-Policy ('self' only) would block. */
(function () {
  'use strict';
  var root = document.getElementById('swagger-ui');
  window.ui = SwaggerUIBundle({
    url: root.getAttribute('data-openapi-url'),
    dom_id: '#swagger-ui',
    layout: 'BaseLayout',
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    persistAuthorization: false,  // a token stays in this tab's memory, not in localStorage
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]
  });
})();
