// /docs without internet: Swagger UI comes from a CDN; when it cannot be loaded, show a plain reference
// of /openapi.json instead of a blank page.
(function () {
  "use strict";
  let done = false;
  const el = (tag, text, style) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (style) e.style.cssText = style;
    return e;
  };
  const pre = (obj) => el("pre", JSON.stringify(obj, null, 2),
    "background:#f6f8fa;padding:8px;overflow:auto;font-size:12px;max-height:360px");

  function resolve(spec, schema) {
    if (schema && schema.$ref) return spec.components.schemas[schema.$ref.split("/").pop()] || schema;
    return schema;
  }

  function render() {
    if (done || window.SwaggerUIBundle) return;
    done = true;
    const root = document.getElementById("swagger-ui") || document.body.appendChild(el("div"));
    root.style.cssText = "font:14px/1.5 system-ui,sans-serif;max-width:900px;margin:0 auto;padding:16px";
    fetch("/openapi.json").then((r) => r.json()).then((spec) => {
      root.textContent = "";
      root.append(el("h1", spec.info.title + " " + spec.info.version));
      root.append(el("p", "Swagger UI could not be loaded (it comes from a CDN; is this browser offline?). " +
        "A plain reference of /openapi.json follows.", "color:#868e96"));
      if (spec.info.description) root.append(el("p", spec.info.description));
      const link = el("a", "/openapi.json");
      link.href = "/openapi.json";
      root.append(link);
      for (const [path, methods] of Object.entries(spec.paths)) {
        for (const [method, op] of Object.entries(methods)) {
          const sec = el("section", undefined, "border-top:1px solid #dee2e6;margin-top:16px;padding-top:8px");
          sec.append(el("h2", method.toUpperCase() + " " + path + (op.summary ? " — " + op.summary : ""),
            "font-size:17px;margin:4px 0"));
          if (op.description) sec.append(el("p", op.description));
          const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
          if (body) {
            const schema = resolve(spec, body.schema);
            sec.append(el("h3", "Request body (JSON)", "font-size:14px"));
            if (schema.examples) schema.examples.forEach((ex) => sec.append(pre(ex)));
            const d = el("details");
            d.append(el("summary", "schema"), pre(schema));
            sec.append(d);
          }
          const ul = el("ul");
          for (const [code, r] of Object.entries(op.responses || {})) ul.append(el("li", code + ": " + r.description));
          sec.append(el("h3", "Responses", "font-size:14px"), ul);
          root.append(sec);
        }
      }
      if (spec.components && spec.components.schemas) {
        root.append(el("h2", "Schemas", "font-size:17px;margin-top:20px"));
        for (const [name, s] of Object.entries(spec.components.schemas)) {
          const d = el("details");
          d.append(el("summary", name), pre(s));
          root.append(d);
        }
      }
    }).catch((e) => { root.textContent = "could not load /openapi.json: " + e; });
  }

  document.addEventListener("DOMContentLoaded", () => setTimeout(render, 300));
  setTimeout(render, 5000);
})();
