// The ecpe page: POST /extract, then draw clauses, emotion -> cause arrows and the pair matrix M-hat.
// Plain JavaScript, no build step, no external resources.
(function () {
  "use strict";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svg = (tag, attrs) => {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  };
  const fmt = (v) => (v === undefined || v === null ? "–" : Number(v).toFixed(3));
  const label = (i) => "c" + (i + 1); // clauses are shown 1-based, as in the corpus

  let last = null; // the last result, redrawn on resize

  // ---- model information ------------------------------------------------------------------------
  fetch("/model").then((r) => (r.ok ? r.json() : Promise.reject(r.status))).then((m) => {
    const info = $("model-info");
    info.textContent = "";
    const parts = [["model", m.model]];
    if (m.split) parts.push(["trained on", m.split + (m.fold !== undefined ? " fold " + m.fold : "")]);
    if (m.protocol) parts.push(["selection", m.protocol]);
    const pair = m.test && m.test.pair;
    if (pair && pair.f1 !== undefined) parts.push(["test pair F1", Number(pair.f1).toFixed(4)]);
    if (m.config && m.config.threshold !== undefined) {
      parts.push(["η", m.config.threshold]);
      $("threshold").placeholder = String(m.config.threshold);
    }
    parts.forEach(([k, v], i) => {
      if (i) info.append(" · ");
      info.append(k + " ");
      info.append(el("b", "", String(v)));
    });
    if (m.card) { // what `ecpe info` prints: recipe, data, figures, segmenter and language, versions
      const dl = $("card");
      for (const [k, v] of Object.entries(m.card)) {
        dl.append(el("dt", "", k));
        dl.append(el("dd", "", String(v)));
      }
      $("model-card").hidden = false;
    }
  }).catch(() => { $("model-info").textContent = "model information unavailable"; });

  // ---- request ----------------------------------------------------------------------------------
  function describeError(status, body) {
    if (body && Array.isArray(body.detail)) {
      return body.detail.map((d) => (d.loc ? d.loc.join(".") + ": " : "") + d.msg).join("; ");
    }
    if (body && typeof body.detail === "string") return body.detail + (body.error_id ? " (id " + body.error_id + ")" : "");
    return "HTTP " + status;
  }

  async function run() {
    const button = $("extract"), status = $("status");
    const payload = { text: $("text").value, matrix: true };
    const t = $("threshold").value.trim();
    if (t !== "") payload.threshold = Number(t);
    button.disabled = true;
    status.className = "status";
    status.textContent = "working…";
    document.body.dataset.state = "busy";
    const start = performance.now();
    try {
      const r = await fetch("/extract", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload),
      });
      let body = null;
      try { body = await r.json(); } catch (e) { /* not JSON */ }
      if (!r.ok) throw new Error(describeError(r.status, body));
      last = body;
      render(body);
      const n = body.pairs.length;
      status.textContent = n + (n === 1 ? " pair" : " pairs") + " in " + body.clauses.length + " clauses · " +
        Math.round(performance.now() - start) + " ms";
      document.body.dataset.state = "done";
    } catch (e) {
      status.className = "status error";
      status.textContent = "Error: " + e.message;
      document.body.dataset.state = "error";
    } finally {
      button.disabled = false;
    }
  }

  // ---- drawing ----------------------------------------------------------------------------------
  function render(res) {
    $("result").hidden = false;
    const n = res.clauses.length;
    const emotions = new Set(res.pairs.map((p) => p.emotion));
    const causes = new Set(res.pairs.map((p) => p.cause));
    const list = $("clauses");
    list.textContent = "";
    for (let i = 0; i < n; i++) {
      const cls = ["clause"];
      if (emotions.has(i)) cls.push("emotion");
      if (causes.has(i)) cls.push("cause");
      const li = el("li", cls.join(" "));
      li.dataset.i = i;
      li.append(el("span", "idx", label(i)), el("span", "txt", res.clauses[i]));
      const tags = [emotions.has(i) ? "emotion" : "", causes.has(i) ? "cause" : ""].filter(Boolean).join(" + ");
      li.append(el("span", "tags", tags));
      const lines = [label(i) + " 「" + res.clauses[i] + "」",
        "emotion probability " + fmt(res.emotion_prob[i]) + " · cause probability " + fmt(res.cause_prob[i])];
      res.pairs.filter((p) => p.emotion === i).forEach((p) =>
        lines.push("emotion → cause " + label(p.cause) + ": " + fmt(p.score)));
      res.pairs.filter((p) => p.cause === i).forEach((p) =>
        lines.push("cause of emotion " + label(p.emotion) + ": " + fmt(p.score)));
      li.title = lines.join("\n");
      li.addEventListener("mouseenter", () => highlight({ clause: i }));
      li.addEventListener("mouseleave", () => highlight(null));
      list.append(li);
    }
    $("no-pairs").hidden = res.pairs.length > 0 || n === 0;
    drawArrows(res);
    drawPairs(res);
    drawMatrix(res);
    $("json").textContent = JSON.stringify(res, null, 1);
  }

  function drawArrows(res) {
    const links = $("links"), doc = $("doc");
    links.textContent = "";
    const gutter = parseFloat(getComputedStyle(document.documentElement).getPropertyValue("--gutter")) || 130;
    const box = doc.getBoundingClientRect();
    links.setAttribute("width", gutter);
    links.setAttribute("height", Math.max(1, box.height));
    const defs = svg("defs");
    const marker = svg("marker", { id: "head", viewBox: "0 0 10 10", refX: "8", refY: "5", markerWidth: "4",
      markerHeight: "4", orient: "auto", markerUnits: "strokeWidth" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#d9480f" }));
    defs.append(marker);
    links.append(defs);
    const items = document.querySelectorAll("#clauses .clause");
    const mid = (i) => {
      const r = items[i].getBoundingClientRect();
      return r.top - box.top + r.height / 2;
    };
    const x = gutter - 3;
    // longer links further out, so that they nest
    const pairs = res.pairs.slice().sort((a, b) => Math.abs(a.emotion - a.cause) - Math.abs(b.emotion - b.cause));
    const used = {};
    pairs.forEach((p) => {
      const span = Math.abs(p.emotion - p.cause);
      const k = (used[span] = (used[span] || 0) + 1) - 1;
      const w = Math.min(gutter - 40, 26 + 18 * span + 6 * k);
      const ye = mid(p.emotion), yc = mid(p.cause);
      let d, lx, ly;
      if (span === 0) { // emotion clause is its own cause: a loop
        d = `M${x},${ye - 7} C${x - w},${ye - 30} ${x - w},${ye + 30} ${x},${ye + 7}`;
        lx = x - 0.75 * w - 3; ly = ye + 4;
      } else {
        const off = ye < yc ? 4 : -4; // leave the emotion clause on its lower or upper half
        d = `M${x},${ye + off} C${x - w},${ye + off} ${x - w},${yc - off} ${x},${yc - off}`;
        lx = x - 0.75 * w - 3; ly = (ye + yc) / 2 + 4;
      }
      const g = svg("g", { class: "arrow", "data-emotion": p.emotion, "data-cause": p.cause, "data-score": p.score });
      const title = svg("title");
      title.textContent = "emotion " + label(p.emotion) + " → cause " + label(p.cause) + ": score " + fmt(p.score);
      g.append(title);
      g.append(svg("path", { class: "hit", d: d }));
      g.append(svg("path", { class: "shaft", d: d, "stroke-width": (1.5 + 2.5 * p.score).toFixed(2),
        "marker-end": "url(#head)" }));
      const text = svg("text", { class: "score", x: lx, y: ly, "text-anchor": "end" });
      text.textContent = Number(p.score).toFixed(2);
      g.append(text);
      g.addEventListener("mouseenter", () => highlight({ pair: p }));
      g.addEventListener("mouseleave", () => highlight(null));
      links.append(g);
    });
  }

  function drawPairs(res) {
    const t = $("pairs");
    t.textContent = "";
    if (!res.pairs.length) {
      t.append(el("caption", "hint", "none above the threshold"));
      return;
    }
    const head = el("tr");
    ["emotion", "", "cause", "score"].forEach((h) => head.append(el("th", "", h)));
    t.append(head);
    res.pairs.forEach((p) => {
      const tr = el("tr");
      tr.title = "emotion 「" + res.clauses[p.emotion] + "」 → cause 「" + res.clauses[p.cause] + "」: score " + fmt(p.score);
      tr.append(el("td", "e", label(p.emotion) + " " + res.clauses[p.emotion]), el("td", "", "→"),
        el("td", "c", label(p.cause) + " " + res.clauses[p.cause]), el("td", "num", fmt(p.score)));
      tr.addEventListener("mouseenter", () => highlight({ pair: p }));
      tr.addEventListener("mouseleave", () => highlight(null));
      t.append(tr);
    });
  }

  function drawMatrix(res) {
    const t = $("matrix");
    t.textContent = "";
    const m = res.pair_matrix || [];
    const n = m.length;
    if (!n) return;
    const isPair = new Set(res.pairs.map((p) => p.emotion + ":" + p.cause));
    const head = el("tr");
    head.append(el("th", "", "e \\ c"));
    for (let j = 0; j < n; j++) head.append(el("th", "", label(j)));
    t.append(head);
    for (let i = 0; i < n; i++) {
      const tr = el("tr");
      tr.append(el("th", "", label(i)));
      for (let j = 0; j < n; j++) {
        const v = Number(m[i][j]) || 0;
        const td = el("td", isPair.has(i + ":" + j) ? "pair" : "", n <= 14 ? v.toFixed(2).replace(/^0/, "") : "");
        td.style.background = `rgba(217, 72, 15, ${Math.min(1, Math.max(0, v)).toFixed(3)})`;
        td.style.color = v > 0.55 ? "#fff" : "#495057";
        td.title = "M̂[emotion " + label(i) + ", cause " + label(j) + "] = " + v.toFixed(4) +
          (isPair.has(i + ":" + j) ? " (pair)" : "");
        td.dataset.e = i;
        td.dataset.c = j;
        td.addEventListener("mouseenter", () => highlight({ pair: { emotion: i, cause: j } }));
        td.addEventListener("mouseleave", () => highlight(null));
        tr.append(td);
      }
      t.append(tr);
    }
  }

  function highlight(what) {
    document.querySelectorAll(".hl").forEach((e) => e.classList.remove("hl"));
    if (!what) return;
    const clauses = document.querySelectorAll("#clauses .clause");
    const mark = (i) => clauses[i] && clauses[i].classList.add("hl");
    if (what.pair) {
      mark(what.pair.emotion);
      mark(what.pair.cause);
      document.querySelectorAll(`.arrow[data-emotion="${what.pair.emotion}"][data-cause="${what.pair.cause}"]`)
        .forEach((a) => a.classList.add("hl"));
      const cell = document.querySelector(`#matrix td[data-e="${what.pair.emotion}"][data-c="${what.pair.cause}"]`);
      if (cell) cell.classList.add("hl");
    } else if (what.clause !== undefined) {
      mark(what.clause);
      document.querySelectorAll(`.arrow[data-emotion="${what.clause}"], .arrow[data-cause="${what.clause}"]`)
        .forEach((a) => a.classList.add("hl"));
    }
  }

  $("extract").addEventListener("click", run);
  $("text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run();
  });
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => { if (last) drawArrows(last); }, 80);
  });
  document.body.dataset.state = "ready";
})();
