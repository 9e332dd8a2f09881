// Just enough DOM for the header and its toasts: elements with children, dataset, classes,
// attributes, textContent, events, and querySelector(All) for the selectors the client uses
// (tags, .classes, [data-attributes] with or without a value, descendant and comma lists).
// There is no innerHTML: a test that passes proves the code never needed it.
// Not a test file itself (node --test only runs *.test.mjs here).

const camel = (name) => name.replace(/-([a-z])/g, (_, c) => c.toUpperCase());

export class FakeElement {
  constructor(doc, tagName) {
    this.ownerDocument = doc;
    this.tagName = tagName.toUpperCase();
    this.childNodes = [];
    this.parentNode = null;
    this.dataset = {};
    this.attributes = new Map();
    this.hidden = false;
    this.className = "";
    this.listeners = new Map();
    this.text = "";
  }

  // --- tree ---

  append(...nodes) {
    for (const node of nodes) this.insert(node, this.childNodes.length);
  }

  prepend(...nodes) {
    nodes.reverse().forEach((node) => this.insert(node, 0));
  }

  insert(node, index) {
    if (typeof node === "string") {
      const text = new FakeElement(this.ownerDocument, "#text");
      text.text = node;
      node = text;
    }
    node.remove();
    node.parentNode = this;
    this.childNodes.splice(index, 0, node);
  }

  // `ref` null: at the end, like the DOM.
  insertBefore(node, ref) {
    const index = ref ? this.childNodes.indexOf(ref) : -1;
    if (ref && index === -1) throw new Error("NotFoundError: ref is not a child");
    if (node === ref) return node;
    node.remove();
    this.insert(node, ref ? this.childNodes.indexOf(ref) : this.childNodes.length);
    return node;
  }

  after(...nodes) {
    const parent = this.parentNode;
    let index = parent.childNodes.indexOf(this) + 1;
    for (const node of nodes) {
      parent.insert(node, index);
      index += 1;
    }
  }

  remove() {
    if (!this.parentNode) return;
    const siblings = this.parentNode.childNodes;
    siblings.splice(siblings.indexOf(this), 1);
    this.parentNode = null;
  }

  contains(node) {
    for (let n = node; n; n = n.parentNode) if (n === this) return true;
    return false;
  }

  get isConnected() {
    let n = this;
    while (n.parentNode) n = n.parentNode;
    return n === this.ownerDocument.documentElement;
  }

  get children() {
    return this.childNodes.filter((c) => c.tagName !== "#TEXT");
  }

  get lastElementChild() {
    return this.children.at(-1) ?? null;
  }

  get textContent() {
    return this.tagName === "#TEXT" ? this.text : this.childNodes.map((c) => c.textContent).join("");
  }

  set textContent(value) {
    for (const child of [...this.childNodes]) child.remove();
    if (value !== "") this.append(String(value));
  }

  // --- attributes and classes ---

  setAttribute(name, value) {
    if (name.startsWith("data-")) this.dataset[camel(name.slice(5))] = String(value);
    else if (name === "class") this.className = String(value);
    else this.attributes.set(name, String(value));
  }

  getAttribute(name) {
    if (name.startsWith("data-")) return this.dataset[camel(name.slice(5))] ?? null;
    if (name === "class") return this.className;
    if (name === "href" && this.href !== undefined) return this.href;
    return this.attributes.has(name) ? this.attributes.get(name) : null;
  }

  // Reflected like the DOM's.
  get id() {
    return this.attributes.get("id") ?? "";
  }

  set id(value) {
    this.attributes.set("id", String(value));
  }

  removeAttribute(name) {
    if (name.startsWith("data-")) delete this.dataset[camel(name.slice(5))];
    else this.attributes.delete(name);
  }

  hasAttribute(name) {
    return this.getAttribute(name) !== null;
  }

  get classList() {
    const element = this;
    const list = () => element.className.split(/\s+/).filter(Boolean);
    return {
      contains: (c) => list().includes(c),
      add: (...cs) => { element.className = [...new Set([...list(), ...cs])].join(" "); },
      remove: (...cs) => { element.className = list().filter((c) => !cs.includes(c)).join(" "); },
    };
  }

  // --- events ---

  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }

  dispatch(type, event = {}) {
    const full = { type, target: this, preventDefault() {}, ...event };
    for (let n = this; n; n = n.parentNode) {
      for (const fn of n.listeners.get(type) ?? []) fn(full);
    }
    if (this.isConnected) for (const fn of this.ownerDocument.listeners.get(type) ?? []) fn(full);
  }

  click() {
    this.dispatch("click");
  }

  focus() {
    this.ownerDocument.activeElement = this;
  }

  // --- queries ---

  querySelectorAll(selector) {
    const groups = selector.split(",").map((g) => g.trim().split(/\s+/).map(parseCompound));
    const found = [];
    const walk = (node) => {
      for (const child of node.children) {
        if (groups.some((chain) => matchesChain(child, chain, this))) found.push(child);
        walk(child);
      }
    };
    walk(this);
    return found;
  }

  querySelector(selector) {
    return this.querySelectorAll(selector)[0] ?? null;
  }
}

function parseCompound(text) {
  const compound = { tag: null, classes: [], attrs: [] };
  const re = /^([a-z][a-z0-9]*)|\.([\w-]+)|\[([\w-]+)(?:="([^"]*)")?\]/gi;
  let match;
  let consumed = 0;
  while ((match = re.exec(text)) !== null) {
    if (match.index !== consumed) break;
    consumed = re.lastIndex;
    if (match[1]) compound.tag = match[1].toUpperCase();
    else if (match[2]) compound.classes.push(match[2]);
    else compound.attrs.push({ name: match[3], value: match[4] });
  }
  if (consumed !== text.length) throw new Error(`fake DOM: unsupported selector ${text}`);
  return compound;
}

function matchesCompound(element, compound) {
  if (compound.tag && element.tagName !== compound.tag) return false;
  if (!compound.classes.every((c) => element.classList.contains(c))) return false;
  return compound.attrs.every(({ name, value }) => {
    const actual = element.getAttribute(name);
    return value === undefined ? actual !== null : actual === value;
  });
}

// The last compound matches the element, the others some ancestors in order (within scope).
function matchesChain(element, chain, scope) {
  if (!matchesCompound(element, chain.at(-1))) return false;
  let i = chain.length - 2;
  for (let n = element.parentNode; n && i >= 0; n = n.parentNode) {
    if (n === scope.parentNode) break;
    if (matchesCompound(n, chain[i])) i -= 1;
  }
  return i < 0;
}

export class FakeDom {
  constructor({ visibilityState = "visible" } = {}) {
    this.visibilityState = visibilityState;
    this.activeElement = null;
    this.listeners = new Map();
    this.documentElement = new FakeElement(this, "html");
    this.body = this.createElement("body");
    this.documentElement.append(this.body);
  }

  createElement(tag) {
    return new FakeElement(this, tag);
  }

  // Builds a tree from [tag, {attributes}, ...children] arrays (strings are text).
  build([tag, attrs = {}, ...children]) {
    const element = this.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "hidden") element.hidden = Boolean(value);
      else element.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) element.append(typeof child === "string" ? child : this.build(child));
    return element;
  }

  querySelector(selector) {
    return this.documentElement.querySelector(selector);
  }

  querySelectorAll(selector) {
    return this.documentElement.querySelectorAll(selector);
  }

  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }

  setVisibility(state) {
    this.visibilityState = state;
    for (const fn of this.listeners.get("visibilitychange") ?? []) fn({ type: "visibilitychange" });
  }
}

// The signed-in page's header (templates/_realtime.html) and toast region (base.html).
export function headerPage({ visibilityState = "visible", prefs = null } = {}) {
  const doc = new FakeDom({ visibilityState });
  if (prefs) doc.body.dataset.notificationPrefs = JSON.stringify(prefs);
  const root = doc.build(["div", { class: "rt", "data-realtime": true, hidden: true },
    ["span", { class: "rt-status", "data-rt-status": true, "data-state": "connecting", role: "status" }, "Connecting…"],
    ["button", { type: "button", class: "rt-bell", "data-rt-bell": true, "aria-expanded": "false" },
      ["span", { class: "badge", "data-rt-badge": true, hidden: true }, "0"]],
    ["div", { id: "rt-dropdown", class: "rt-dropdown", "data-rt-dropdown": true, hidden: true },
      ["button", { type: "button", "data-rt-mark-all": true }, "Mark all read"],
      ["ul", { class: "rt-list", "data-rt-list": true }],
      ["p", { "data-rt-empty": true }, "Nothing yet."]],
  ]);
  const toasts = doc.build(["div", { class: "toasts", "data-rt-toasts": true, "aria-live": "polite" }]);
  doc.body.append(root, toasts);
  return { doc, root, toasts };
}
