// HyperNodes interactive pipeline graph: pan (drag), zoom (wheel), expand/collapse nested
// pipelines (click their box), a node's details on click, light/dark theme.  No dependencies;
// `hypernodesGraph(root, data)` draws `data` (made by hypernodes.viz.widget) into `root`.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const key in attrs) node.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function visible(nodes, expanded, groups, owner) {
    // The nodes on screen: an expanded pipeline is replaced by its (visible) children.
    let out = [];
    for (const n of nodes) {
      if (n.kind === "pipeline" && expanded.has(n.id)) {
        const inner = visible(n.children, expanded, groups, n);
        groups.push({ node: n, members: inner.map((m) => m.id), owner: owner });
        out = out.concat(inner);
      } else {
        out.push(n);
      }
    }
    return out;
  }

  function layout(shown) {
    // Layers by longest path from the inputs, then one barycentre pass to order each layer.
    const byId = new Map(shown.map((n) => [n.id, n]));
    const producer = new Map();
    for (const n of shown) for (const o of n.outputs) producer.set(o, n.id);
    const edges = [];
    for (const n of shown) {
      for (const name of n.inputs) {
        let from = producer.get(name);
        if (from === undefined) {
          from = "input:" + name;
          if (!byId.has(from)) {
            const input = { id: from, name: name, kind: "input", inputs: [], outputs: [name],
                            details: { inputs: [], outputs: [{ name: name, type: null }], options: {} } };
            byId.set(from, input);
          }
        }
        edges.push({ from: from, to: n.id, label: name });
      }
    }
    const all = Array.from(byId.values());
    const preds = new Map(all.map((n) => [n.id, []]));
    for (const e of edges) preds.get(e.to).push(e.from);
    const layer = new Map();
    const depth = (id, seen) => {
      if (layer.has(id)) return layer.get(id);
      if (seen.has(id)) return 0;
      seen.add(id);
      const ps = preds.get(id) || [];
      const d = ps.length ? 1 + Math.max(...ps.map((p) => depth(p, seen))) : 0;
      layer.set(id, d);
      return d;
    };
    for (const n of all) depth(n.id, new Set());
    const layers = [];
    for (const n of all) (layers[layer.get(n.id)] = layers[layer.get(n.id)] || []).push(n);
    const pos = new Map();
    layers.forEach((row, i) => {
      if (i > 0) {
        const centre = (n) => {
          const ps = preds.get(n.id).filter((p) => pos.has(p));
          return ps.length ? ps.reduce((s, p) => s + pos.get(p).x, 0) / ps.length : 0;
        };
        row.sort((a, b) => centre(a) - centre(b));
      }
      let x = 0;
      const widths = row.map((n) => Math.max(70, 16 + 7.2 * (n.name.length + (n.kind === "pipeline" ? 3 : 0))));
      const total = widths.reduce((s, w) => s + w, 0) + 30 * (row.length - 1);
      x = -total / 2;
      row.forEach((n, k) => {
        pos.set(n.id, { x: x + widths[k] / 2, y: i * 90, w: widths[k], h: 38 });
        x += widths[k] + 30;
      });
    });
    return { nodes: all, edges: edges, pos: pos };
  }

  function draw(root, data, state) {
    const stage = root.querySelector(".hn-stage");
    stage.innerHTML = "";
    const groups = [];
    const shown = visible(data.nodes, state.expanded, groups, null);
    const g = layout(shown);
    const svg = el("svg", { class: "hn-svg", width: "100%", height: "100%" }, stage);
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: root.id + "-arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
                                  markerWidth: "7", markerHeight: "7", orient: "auto" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", class: "hn-arrowhead" }, marker);
    const view = el("g", { class: "hn-view" }, svg);
    state.view = view;
    // group boxes of expanded pipelines, drawn behind their members
    for (const grp of groups.reverse()) {
      const boxes = grp.members.map((id) => g.pos.get(id)).filter(Boolean);
      if (!boxes.length) continue;
      const x0 = Math.min(...boxes.map((b) => b.x - b.w / 2)) - 16;
      const x1 = Math.max(...boxes.map((b) => b.x + b.w / 2)) + 16;
      const y0 = Math.min(...boxes.map((b) => b.y - b.h / 2)) - 30;
      const y1 = Math.max(...boxes.map((b) => b.y + b.h / 2)) + 12;
      const box = el("g", { class: "hn-group", "data-id": grp.node.id }, view);
      el("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, rx: 10 }, box);
      const title = el("text", { x: x0 + 10, y: y0 + 17, class: "hn-group-title" }, box);
      title.textContent = "\u2212 " + grp.node.name;
      box.addEventListener("click", (ev) => { ev.stopPropagation(); toggle(root, data, state, grp.node); });
    }
    for (const e of g.edges) {
      const a = g.pos.get(e.from), b = g.pos.get(e.to);
      const y0 = a.y + a.h / 2, y1 = b.y - b.h / 2, mid = (y0 + y1) / 2;
      el("path", { d: `M${a.x},${y0} C${a.x},${mid} ${b.x},${mid} ${b.x},${y1}`, class: "hn-edge",
                   "marker-end": `url(#${root.id}-arrow)` }, view);
    }
    for (const n of g.nodes) {
      const p = g.pos.get(n.id);
      const node = el("g", { class: "hn-node hn-" + n.kind, "data-id": n.id, "data-name": n.name,
                             transform: `translate(${p.x - p.w / 2},${p.y - p.h / 2})` }, view);
      if (n.kind === "input") el("ellipse", { cx: p.w / 2, cy: p.h / 2, rx: p.w / 2, ry: p.h / 2 }, node);
      else el("rect", { width: p.w, height: p.h, rx: n.kind === "pipeline" ? 4 : 9 }, node);
      const text = el("text", { x: p.w / 2, y: p.h / 2 + 4, "text-anchor": "middle" }, node);
      text.textContent = (n.kind === "pipeline" ? "+ " : "") + n.name;
      node.addEventListener("click", (ev) => {
        ev.stopPropagation();
        show(root, n);
        if (n.kind === "pipeline") toggle(root, data, state, n);
      });
    }
    if (!state.placed) fit(root, state, g);
    else apply(state);
  }

  function toggle(root, data, state, node) {
    if (state.expanded.has(node.id)) state.expanded.delete(node.id);
    else state.expanded.add(node.id);
    state.placed = false;
    draw(root, data, state);
  }

  function show(root, n) {
    const panel = root.querySelector(".hn-details");
    const d = n.details || { inputs: [], outputs: [], options: {} };
    const list = (items) => items.map((i) => `<li>${esc(i.name)}${i.type ? ": <code>" + esc(i.type) + "</code>" : ""}</li>`).join("");
    const opts = Object.entries(d.options || {}).map(([k, v]) => `<li>${esc(k)}: <code>${esc(String(v))}</code></li>`).join("");
    panel.innerHTML = `<h4>${esc(n.name)} <small>(${esc(n.kind)})</small></h4>` +
      (d.doc ? `<p>${esc(d.doc)}</p>` : "") +
      `<b>inputs</b><ul class="hn-inputs">${list(d.inputs) || "<li>-</li>"}</ul>` +
      `<b>outputs</b><ul class="hn-outputs">${list(d.outputs) || "<li>-</li>"}</ul>` +
      (opts ? `<b>options</b><ul class="hn-options">${opts}</ul>` : "");
    panel.style.display = "block";
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
  }

  function apply(state) {
    state.view.setAttribute("transform", `translate(${state.tx},${state.ty}) scale(${state.k})`);
  }

  function fit(root, state, g) {
    const stage = root.querySelector(".hn-stage");
    const boxes = Array.from(g.pos.values());
    const x0 = Math.min(...boxes.map((b) => b.x - b.w / 2)) - 40, x1 = Math.max(...boxes.map((b) => b.x + b.w / 2)) + 40;
    const y0 = Math.min(...boxes.map((b) => b.y - b.h / 2)) - 40, y1 = Math.max(...boxes.map((b) => b.y + b.h / 2)) + 40;
    const w = stage.clientWidth || 800, h = stage.clientHeight || 500;
    state.k = Math.min(1.5, w / (x1 - x0), h / (y1 - y0));
    state.tx = w / 2 - state.k * (x0 + x1) / 2;
    state.ty = h / 2 - state.k * (y0 + y1) / 2;
    state.placed = true;
    apply(state);
  }

  function controls(root, data, state) {
    const stage = root.querySelector(".hn-stage");
    let drag = null;
    stage.addEventListener("mousedown", (ev) => { drag = { x: ev.clientX - state.tx, y: ev.clientY - state.ty }; });
    window.addEventListener("mouseup", () => { drag = null; });
    stage.addEventListener("mousemove", (ev) => {
      if (!drag) return;
      state.tx = ev.clientX - drag.x; state.ty = ev.clientY - drag.y; apply(state);
    });
    stage.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const rect = stage.getBoundingClientRect();
      const mx = ev.clientX - rect.left, my = ev.clientY - rect.top;
      const factor = ev.deltaY < 0 ? 1.15 : 1 / 1.15;
      state.tx = mx - (mx - state.tx) * factor; state.ty = my - (my - state.ty) * factor;
      state.k *= factor; apply(state);
    }, { passive: false });
    root.querySelector(".hn-theme").addEventListener("click", () => {
      root.classList.toggle("hn-dark"); root.classList.toggle("hn-light");
    });
    root.querySelector(".hn-fit").addEventListener("click", () => { state.placed = false; draw(root, data, state); });
    root.querySelector(".hn-expand").addEventListener("click", () => {
      const all = [];
      const walk = (ns) => { for (const n of ns) if (n.kind === "pipeline") { all.push(n.id); walk(n.children); } };
      walk(data.nodes);
      const open = all.every((id) => state.expanded.has(id));
      state.expanded = new Set(open ? [] : all);
      state.placed = false; draw(root, data, state);
    });
  }

  window.hypernodesGraph = function (root, data) {
    const state = { expanded: new Set(data.expanded || []), k: 1, tx: 0, ty: 0, placed: false };
    controls(root, data, state);
    draw(root, data, state);
    root.dataset.ready = "1";
  };
})();
