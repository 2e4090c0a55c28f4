// A form generated from a task's JSON Schema: strings, numbers, integers, booleans, enums and
// nested objects get their own inputs; anything else (arrays, unions, no type) gets a small
// JSON editor. The browser does not validate (the form is novalidate): the server does, and
// its messages are placed next to the field their JSON pointer names. A boolean is a Yes/No
// choice that starts unanswered (tri-state), so forgetting a required one is a "required"
// error, never a silent "no".

let serial = 0;

export function escapePointer(key) {
  return String(key).replace(/~/g, "~0").replace(/\//g, "~1");
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function kindOf(schema) {
  if (Array.isArray(schema.enum) && schema.enum.length) return "enum";
  if (schema.type === "object" && schema.properties) return "object";
  if (["string", "number", "integer", "boolean"].includes(schema.type)) return schema.type;
  return "json";
}

export class GeneratedForm {
  constructor(container, schema) {
    this.container = container;
    this.fields = [];           // {pointer, path, kind, schema, input, error, required}
    this.groups = new Map();    // pointer -> {error, node} for objects (and "" for the form)
    container.replaceChildren();
    const root = schema && kindOf(schema) === "object" ? schema : null;
    if (root) {
      const formError = el("p", { class: "error", id: `err-${++serial}` });
      container.append(formError);
      this.groups.set("", { error: formError, node: container, required: true, path: [] });
      this.addProperties(container, root, [], "");
    } else {
      this.addField(container, schema || {}, [], "", "Form data", true, "json");
    }
  }

  addProperties(parent, schema, path, pointer) {
    const required = new Set(schema.required || []);
    for (const [key, sub] of Object.entries(schema.properties)) {
      const childPath = [...path, key];
      const childPointer = `${pointer}/${escapePointer(key)}`;
      const label = sub.title || key;
      if (kindOf(sub) === "object") {
        const set = el("fieldset", { "data-pointer": childPointer });
        set.append(el("legend", {}, label + (required.has(key) ? " *" : "")));
        const error = el("p", { class: "error", id: `err-${++serial}` });
        set.append(error);
        this.groups.set(childPointer, { error, node: set, required: required.has(key), path: childPath });
        this.addProperties(set, sub, childPath, childPointer);
        parent.append(set);
      } else {
        this.addField(parent, sub, childPath, childPointer, label, required.has(key), kindOf(sub));
      }
    }
  }

  addField(parent, schema, path, pointer, label, required, kind) {
    const id = `f-${++serial}`;
    const wrap = el("div", { class: kind === "boolean" ? "field check" : "field", "data-pointer": pointer });
    const error = el("p", { class: "error", id: `${id}-error` });
    let input;
    if (kind === "enum") {
      input = el("select", { id });
      input.append(el("option", { value: "" }, "— choose —"));
      schema.enum.forEach((value, i) => input.append(el("option", { value: String(i) }, String(value))));
    } else if (kind === "boolean") {
      return this.addChoice(parent, schema, path, pointer, label, required, id);
    } else if (kind === "json") {
      input = el("textarea", { id, rows: "4", spellcheck: "false" });
    } else {
      input = el("input", { id, type: "text", autocomplete: "off" });
      if (kind !== "string") input.setAttribute("inputmode", kind === "integer" ? "numeric" : "decimal");
    }
    input.setAttribute("aria-describedby", error.id);
    input.setAttribute("name", pointer || "/");
    const labelNode = el("label", { for: id }, label + (required ? " *" : ""));
    wrap.append(labelNode, input);
    if (schema.description || kind === "json") {
      wrap.append(el("div", { class: "help" }, schema.description || "a JSON value"));
    }
    wrap.append(error);
    parent.append(wrap);
    this.fields.push({ pointer, path, kind, schema, input, error, required });
  }

  // Yes / No radios (and "Not given" when the field is optional); none chosen at first
  // unless the schema has a default.
  addChoice(parent, schema, path, pointer, label, required, id) {
    const wrap = el("div", { class: "field choice", "data-pointer": pointer, role: "radiogroup",
      "aria-label": label, "aria-required": String(required) });
    const error = el("p", { class: "error", id: `${id}-error` });
    wrap.setAttribute("aria-describedby", error.id);
    wrap.append(el("span", { class: "label" }, label + (required ? " *" : "")));
    const options = [["true", "Yes"], ["false", "No"]];
    if (!required) options.push(["", "Not given"]);
    const radios = options.map(([value, text], i) => {
      const radio = el("input", { id: `${id}-${i}`, type: "radio", name: id, value });
      if (String(schema.default) === value || (value === "" && typeof schema.default !== "boolean")) {
        radio.checked = true;
      }
      const option = el("label", { for: radio.id, class: "option" });
      option.append(radio, " " + text);
      wrap.append(option);
      return radio;
    });
    if (schema.description) wrap.append(el("div", { class: "help" }, schema.description));
    wrap.append(error);
    parent.append(wrap);
    this.fields.push({ pointer, path, kind: "boolean", schema, input: radios[0], radios, error, required });
  }

  // Show ``data`` (what was submitted) in the fields.
  fill(data) {
    for (const field of this.fields) {
      let value = data;
      for (const key of field.path) value = value == null ? undefined : value[key];
      if (field.path.length === 0) value = data;
      if (value === undefined) continue;
      if (field.kind === "boolean") {
        for (const radio of field.radios) radio.checked = radio.value === String(value);
      } else if (field.kind === "enum") {
        const i = field.schema.enum.findIndex((v) => JSON.stringify(v) === JSON.stringify(value));
        field.input.value = i < 0 ? "" : String(i);
      } else if (field.kind === "json") {
        field.input.value = JSON.stringify(value, null, 2);
      } else {
        field.input.value = String(value);
      }
    }
  }

  // The form data, or null after marking fields whose JSON does not parse.
  collect() {
    this.clearErrors();
    const data = {};
    let ok = true;
    for (const field of this.fields) {
      const value = this.valueOf(field);
      if (value === BAD) { ok = false; continue; }
      if (value === undefined) continue;
      if (field.path.length === 0) return value;  // the whole form is one JSON editor
      this.place(data, field.path, value);
    }
    for (const [pointer, group] of this.groups) {  // a required nested object left empty
      if (pointer && group.required) this.place(data, group.path, undefined);
    }
    return ok ? data : null;
  }

  place(data, path, value) {
    let node = data;
    for (const key of path.slice(0, -1)) node = node[key] ??= {};
    const last = path[path.length - 1];
    if (value !== undefined) node[last] = value;
    else node[last] ??= {};
  }

  valueOf(field) {
    const { input, kind, schema } = field;
    if (kind === "boolean") {
      const chosen = field.radios.find((r) => r.checked);
      return chosen && chosen.value ? chosen.value === "true" : undefined;
    }
    const raw = input.value;
    if (raw.trim() === "") return undefined;  // empty means "not given"
    if (kind === "enum") return schema.enum[Number(raw)];
    if (kind === "number" || kind === "integer") {
      const n = Number(raw);
      return Number.isFinite(n) ? n : raw;  // not a number: send it, the server says why
    }
    if (kind === "json") {
      try { return JSON.parse(raw); } catch (e) {
        this.mark(field.error, field.input, "not valid JSON: " + e.message);
        return BAD;
      }
    }
    return raw;
  }

  clearErrors() {
    for (const f of this.fields) { f.error.textContent = ""; f.input.removeAttribute("aria-invalid"); }
    for (const g of this.groups.values()) g.error.textContent = "";
  }

  mark(errorNode, input, message) {
    errorNode.textContent = errorNode.textContent ? `${errorNode.textContent}; ${message}` : message;
    if (input) input.setAttribute("aria-invalid", "true");
  }

  // Place each server violation at its field (or the nearest enclosing group); returns the
  // violations no field or group could show.
  showViolations(violations) {
    this.clearErrors();
    const rest = [];
    for (const v of violations) {
      const field = this.fields.find((f) => f.pointer === v.pointer);
      if (field) {
        this.mark(field.error, field.input, v.message);
        continue;
      }
      let pointer = v.pointer;
      while (!this.groups.has(pointer) && pointer) pointer = pointer.slice(0, pointer.lastIndexOf("/"));
      const group = this.groups.get(pointer);
      if (group) this.mark(group.error, null, v.pointer === pointer ? v.message : `${v.pointer}: ${v.message}`);
      else rest.push(v);
    }
    const first = this.fields.find((f) => f.input.getAttribute("aria-invalid") === "true");
    if (first) first.input.focus();  // the first invalid field in the form's order
    return rest;
  }
}

const BAD = Symbol("bad");
