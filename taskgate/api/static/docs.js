// Renders /openapi.json as a list of operations grouped by tag, with parameters, bodies and schemas.
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function refName(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.allOf) return schema.allOf.map(refName).filter(Boolean).join(" + ");
  if (schema.properties && schema.properties.data) return `data: ${refName(schema.properties.data)}`;
  if (schema.items) return `${refName(schema.items)}[]`;
  return schema.type || "";
}

function operation(method, path, op) {
  const box = el("section", null, "wide operation");
  box.dataset.op = `${method.toUpperCase()} ${path}`;
  box.append(el("h3", `${method.toUpperCase()} ${path}`), el("p", op.summary));
  const auth = (op.security || []).flatMap(Object.keys);
  if (auth.length) box.append(el("p", `auth: ${auth.join(", ")}`));
  for (const p of op.parameters || []) box.append(el("p", `${p.in} parameter ${p.name}: ${p.schema.type || refName(p.schema)}`));
  const body = op.requestBody && op.requestBody.content["application/json"];
  if (body) box.append(el("p", `body: ${refName(body.schema)}`));
  const ok = op.responses["200"].content;
  const type = Object.keys(ok)[0];
  box.append(el("p", `200 ${type}: ${refName(ok[type].schema)}`));
  return box;
}

function schemaBox(name, schema) {
  const box = el("section", null, "wide schema");
  box.id = `schema-${name}`;
  box.append(el("h3", name));
  if (schema.description) box.append(el("p", schema.description));
  const dl = el("dl");
  for (const [prop, s] of Object.entries(schema.properties || {})) {
    const req = (schema.required || []).includes(prop) ? " (required)" : "";
    dl.append(el("dt", prop + req), el("dd", refName(s) || (s.anyOf || []).map(refName).join(" | ") || JSON.stringify(s)));
  }
  box.append(dl);
  return box;
}

document.addEventListener("DOMContentLoaded", async () => {
  const main = document.getElementById("docs");
  const doc = await (await fetch("/openapi.json")).json();
  const byTag = {};
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) (byTag[op.tags[0]] ||= []).push(operation(method, path, op));
  }
  main.replaceChildren();
  for (const [tag, boxes] of Object.entries(byTag)) main.append(el("h2", tag, "wide"), ...boxes);
  main.append(el("h2", "schemas", "wide"));
  for (const [name, schema] of Object.entries(doc.components.schemas)) main.append(schemaBox(name, schema));
});
