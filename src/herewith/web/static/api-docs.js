// Starts Swagger UI on the page /v1/docs (herewith/web/api_docs.py): the OpenAPI document named by the page's
// #swagger-ui element, FastAPI's usual options, and no online validator (it would send the URL elsewhere).
const root = document.getElementById('swagger-ui');
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: '#swagger-ui',
  layout: 'BaseLayout',
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
