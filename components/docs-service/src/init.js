// Starts Swagger UI on the whole API's document. validatorUrl null: no call leaves this host.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  validatorUrl: null,
});
