// Herald's API reference: Swagger UI over the API's own OpenAPI document (/v1/openapi.json,
// next to this page). Requests made with "Try it out" go to this origin with the key given
// under "Authorize"; nothing is sent anywhere else (no public validator).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", window.location.href).toString(),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    displayRequestDuration: true,
  });
});
