// The API reference: renders this listener's /openapi.json as a page, operations grouped by tag,
// each with its parameters, request body and answers (with the error codes they carry). Plain
// JavaScript, no dependencies, served by the binary; every text goes in as text, never as HTML.
'use strict';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const MAX_DEPTH = 4;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// Text with `code` spans, as the document's descriptions write them.
function prose(text, tag = 'p') {
  const node = el(tag);
  String(text || '').split('`').forEach((part, i) => {
    if (part) node.append(i % 2 ? el('code', {}, part) : document.createTextNode(part));
  });
  return node;
}

// The error codes a description names: the words in backticks that are codes.
function codesIn(text) {
  return [...String(text || '').matchAll(/`([a-z][a-z_]*)`/g)].map((m) => m[1]);
}

function refName(ref) {
  return ref.startsWith('#/components/schemas/') ? ref.slice('#/components/schemas/'.length) : ref;
}

function resolve(doc, schema) {
  if (schema && schema.$ref) return doc.components?.schemas?.[refName(schema.$ref)] || {};
  return schema || {};
}

// A one-line summary of a schema's type and constraints.
function typeOf(doc, schema) {
  if (!schema) return 'any';
  if (schema.$ref) return refName(schema.$ref);
  const alternatives = schema.oneOf || schema.anyOf;
  if (alternatives) return alternatives.map((s) => typeOf(doc, s)).join(' | ');
  let type = Array.isArray(schema.type) ? schema.type.join(' | ') : schema.type || 'object';
  if (schema.type === 'array' || (Array.isArray(schema.type) && schema.type.includes('array'))) {
    type = `${typeOf(doc, schema.items)}[]`;
  }
  const notes = [];
  if (schema.format) notes.push(schema.format);
  if (schema.enum) notes.push(`one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  if (schema.minimum !== undefined) notes.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) notes.push(`≤ ${schema.maximum}`);
  if (schema.minLength !== undefined) notes.push(`length ≥ ${schema.minLength}`);
  if (schema.maxLength !== undefined) notes.push(`length ≤ ${schema.maxLength}`);
  if (schema.minItems !== undefined) notes.push(`≥ ${schema.minItems} items`);
  if (schema.maxItems !== undefined) notes.push(`≤ ${schema.maxItems} items`);
  if (schema.pattern) notes.push(`pattern ${schema.pattern}`);
  if (schema.default !== undefined) notes.push(`default ${JSON.stringify(schema.default)}`);
  if (schema.example !== undefined) notes.push(`e.g. ${JSON.stringify(schema.example)}`);
  return notes.length ? `${type} (${notes.join('; ')})` : type;
}

// A schema as a nested list of its fields.
function schemaView(doc, schema, depth = 0, seen = new Set()) {
  const name = schema && schema.$ref ? refName(schema.$ref) : null;
  const body = resolve(doc, schema);
  const box = el('div', { class: 'schema' });
  if (name) box.append(el('p', { class: 'muted' }, el('code', {}, name)));
  if (body.description && depth === 0) box.append(prose(body.description));
  const item = body.type === 'array' ? resolve(doc, body.items) : body;
  const props = item.properties;
  if (!props || depth >= MAX_DEPTH || (name && seen.has(name))) {
    if (!props) box.append(el('p', {}, el('code', {}, typeOf(doc, schema))));
    return box;
  }
  const inner = new Set(seen);
  if (name) inner.add(name);
  const required = new Set(item.required || []);
  const rows = Object.entries(props).map(([field, s]) => {
    const resolved = resolve(doc, s);
    const nested = resolved.properties || (resolved.items && resolve(doc, resolved.items).properties);
    return el('tr', {},
      el('td', {}, el('code', {}, field), required.has(field) ? ' *' : ''),
      el('td', {}, el('code', {}, typeOf(doc, s))),
      el('td', {}, prose(s.description || resolved.description || '', 'span'),
        nested ? schemaView(doc, s, depth + 1, inner) : null));
  });
  box.append(el('table', { class: 'grid small' },
    el('thead', {}, el('tr', {}, el('th', {}, 'field (* required)'), el('th', {}, 'type'), el('th', {}, 'meaning'))),
    el('tbody', {}, rows)));
  return box;
}

function parametersView(doc, params) {
  if (!params || !params.length) return null;
  const rows = params.map((p) => el('tr', {},
    el('td', {}, el('code', {}, p.name), p.required ? ' *' : ''),
    el('td', {}, p.in),
    el('td', {}, el('code', {}, typeOf(doc, p.schema))),
    el('td', {}, prose(p.description, 'span'))));
  return [el('h4', {}, 'Parameters'), el('table', { class: 'grid small params' },
    el('thead', {}, el('tr', {}, el('th', {}, 'name (* required)'), el('th', {}, 'in'), el('th', {}, 'type'), el('th', {}, 'meaning'))),
    el('tbody', {}, rows))];
}

function bodyView(doc, body) {
  if (!body) return null;
  const parts = [el('h4', {}, 'Request body', body.required ? ' (required)' : ' (optional)')];
  if (body.description) parts.push(prose(body.description));
  for (const [type, media] of Object.entries(body.content || {})) {
    parts.push(el('p', { class: 'muted' }, type), schemaView(doc, media.schema));
  }
  return parts;
}

function responsesView(doc, responses) {
  const rows = Object.entries(responses || {}).map(([status, r]) => {
    const codes = codesIn(r.description);
    const types = Object.entries(r.content || {}).map(([type, media]) => `${type}: ${typeOf(doc, media.itemSchema || media.schema)}`);
    const links = Object.keys(r.links || {});
    return el('tr', { class: 'response', 'data-status': status },
      el('td', {}, el('span', { class: `status ${status < '400' ? 'active' : 'ended'}` }, status)),
      el('td', {}, prose(r.description, 'span'),
        codes.length ? el('div', { class: 'codes' }, 'codes: ', codes.map((c, i) => [i ? ', ' : '', el('code', {}, c)])) : null,
        links.length ? el('div', { class: 'muted' }, `links: ${links.join(', ')}`) : null),
      el('td', {}, types.map((t) => el('div', {}, el('code', {}, t)))));
  });
  return [el('h4', {}, 'Answers'), el('table', { class: 'grid small responses' },
    el('thead', {}, el('tr', {}, el('th', {}, 'status'), el('th', {}, 'meaning and codes'), el('th', {}, 'body'))),
    el('tbody', {}, rows))];
}

function operationView(doc, path, method, op, shared) {
  const security = (op.security || []).flatMap((s) => Object.keys(s));
  const anchor = op.operationId || `${method}-${path}`;
  return el('article', { class: 'card op', id: anchor, 'data-method': method.toUpperCase(), 'data-path': path },
    el('h3', {}, el('span', { class: 'status upcoming' }, method.toUpperCase()), ' ', el('code', {}, path)),
    op.summary ? prose(op.summary) : null,
    op.description ? prose(op.description) : null,
    el('p', { class: 'muted' }, security.length ? `credentials: ${security.join(' or ')}` : 'no credentials',
      op.operationId ? ` · operationId ${op.operationId}` : ''),
    parametersView(doc, [...shared, ...(op.parameters || [])]),
    bodyView(doc, op.requestBody),
    responsesView(doc, op.responses));
}

function render(doc) {
  const app = document.getElementById('app');
  const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || 'other';
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push(operationView(doc, path, method, op, item.parameters || []));
    }
  }
  const info = doc.info || {};
  const servers = (doc.servers || []).map((s) => el('li', {}, el('code', {}, s.url), s.description ? ` — ${s.description}` : ''));
  const sections = [...byTag.values()].filter((g) => g.ops.length).map((g) =>
    el('section', { class: 'tag', 'data-tag': g.tag.name },
      el('h2', {}, g.tag.name), g.tag.description ? prose(g.tag.description) : null, g.ops));
  app.replaceChildren(
    el('section', { class: 'card' },
      el('h1', {}, info.title || 'API', info.version ? ` ${info.version}` : ''),
      prose(info.description),
      servers.length ? [el('h4', {}, 'Server'), el('ul', {}, servers)] : null,
      el('p', { class: 'muted' }, 'The document: ', el('a', { href: '/openapi.json' }, '/openapi.json'),
        '. The buyers\' listener serves its own at the same path.')),
    ...sections);
  app.setAttribute('aria-busy', 'false');
}

async function main() {
  const app = document.getElementById('app');
  try {
    const res = await fetch('/openapi.json');
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    render(await res.json());
  } catch (e) {
    app.replaceChildren(el('p', { class: 'error', role: 'alert' }, `Could not load /openapi.json: ${e.message}`));
    app.setAttribute('aria-busy', 'false');
  }
}

main();
