// Starts Swagger UI on /docs from the relay's own files (a file, not an inline script: the
// page's Content-Security-Policy allows scripts from the relay only).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
  });
});
