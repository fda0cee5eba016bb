"""The HTML report's sample viewer: its markup, style and script (plain DOM code, no libraries, no network)."""

# The script reads the document report/samples.py embeds (<script type="application/json" id="viewer-data">) and
# renders one page of the filtered sample list at a time, and a sample's details only when it is opened, so a run
# of 16,400 samples costs the browser a JSON.parse and fifty table rows. Texts go in through textContent, never as
# markup. Fragments route: #problem=RUN/ITEM (a grid cell), #sample=RUN/ITEM/INDEX, #pair=RUN/OTHER/ITEM (a flip).

from __future__ import annotations

import base64
import hashlib

CSS = """
.v-controls { display:flex; flex-wrap:wrap; gap:8px 14px; align-items:center; margin:4px 0 10px; }
.v-controls label { font-size:12.5px; color:var(--muted); display:flex; gap:5px; align-items:center; }
.v-controls select, .v-controls input[type=text], .v-controls input[type=search] { font:inherit; font-size:13px;
  padding:3px 6px; border:1px solid #cbd5e1; border-radius:6px; background:#fff; max-width:260px; }
.v-list tbody tr { cursor:pointer; } .v-list tbody tr:hover { background:#eef2ff; }
.v-list tr.open { background:#e0e7ff !important; }
.v-pager { display:flex; gap:10px; align-items:center; margin:6px 0; font-size:12.5px; color:var(--muted); }
.v-pager button { font:inherit; font-size:12.5px; padding:2px 10px; border:1px solid #cbd5e1; border-radius:6px;
  background:#fff; cursor:pointer; } .v-pager button:disabled { opacity:.4; cursor:default; }
.v-detail { display:grid; grid-template-columns:minmax(0,1fr); gap:16px; margin-top:12px; }
.v-detail.two { grid-template-columns:minmax(0,1fr) minmax(0,1fr); }
.v-pane { border:1px solid var(--line); border-radius:8px; padding:10px 12px; min-width:0; }
.v-pane h3 { margin:0 0 4px; } .v-pane h4 { font-size:12px; margin:10px 0 3px; color:var(--muted);
  text-transform:uppercase; letter-spacing:.04em; }
.v-pane pre { margin:0; padding:8px 10px; background:#f8fafc; border:1px solid var(--line); border-radius:6px;
  max-height:360px; overflow:auto; white-space:pre-wrap; overflow-wrap:anywhere;
  font:12px/1.45 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.v-pane pre .ctx { color:#94a3b8; }
.o-chip { display:inline-block; padding:0 7px; border-radius:9px; color:#fff; font-size:11.5px; white-space:nowrap; }
.grid { display:flex; flex-wrap:wrap; gap:2px; margin:6px 0 4px; }
.gcol { display:flex; flex-direction:column; gap:2px; align-items:center; }
.gcell { display:block; width:13px; height:13px; border-radius:2px; }
a.gcell:hover { outline:2px solid var(--ink); outline-offset:0; }
.glbl { font-size:9px; color:var(--muted); height:11px; line-height:11px; }
.legend { font-size:12px; color:var(--muted); } .legend span { margin-right:12px; white-space:nowrap; }
"""

MARKUP = """
<div class="v-controls">
  <label>run <select id="v-run"></select></label>
  <label>side by side with <select id="v-other"><option value="-1">—</option></select></label>
  <label>outcome <select id="v-outcome"><option value="">any</option></select></label>
  <label>problem <input type="text" id="v-problem" list="v-problems" placeholder="id, e.g. HumanEval/3"
    autocomplete="off"></label>
  <label><input type="checkbox" id="v-flips" disabled> only problems that flipped</label>
  <label>search <input type="search" id="v-search" placeholder="completion, detail, stderr"></label>
</div>
<datalist id="v-problems"></datalist>
<p class="note" id="v-notes"></p>
<div class="v-pager"><button id="v-prev" type="button">‹ previous</button><span id="v-count"></span>
  <button id="v-next" type="button">next ›</button></div>
<div class="scroll"><table class="v-list"><thead><tr><th>problem</th><th class="num">sample</th><th>outcome</th>
  <th>detail</th><th id="v-other-head">side by side</th></tr></thead><tbody id="v-rows"></tbody></table></div>
<div class="v-detail" id="v-detail"></div>
"""

SCRIPT = r"""
(function () {
  "use strict";
  var holder = document.getElementById("viewer-data");
  if (!holder) { return; }
  var D = JSON.parse(holder.textContent);
  var S = D.strings, RUNS = D.runs, PAGE = 50;
  var COLORS = JSON.parse(document.getElementById("viewer-colors").textContent);
  var st = {run: 0, other: -1, outcome: "", problem: "", flips: false, q: "", page: 0, open: -1};
  var matched = [], hay = {}, itemIndex = [];
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }
  function chip(outcome) {
    var c = el("span", "o-chip", outcome);
    c.style.background = COLORS[outcome] || "#999";
    return c;
  }
  function indexOfItems(r) {
    if (!itemIndex[r]) {
      var m = {}, items = RUNS[r].items;
      for (var i = 0; i < items.length; i++) { m[items[i]] = i; }
      itemIndex[r] = m;
    }
    return itemIndex[r];
  }
  function flipped(a, b) {
    var A = RUNS[a], B = RUNS[b], bi = indexOfItems(b), out = {};
    for (var i = 0; i < A.items.length; i++) {
      var j = bi[A.items[i]];
      if (j === undefined) { continue; }
      var x = A.counts[i], y = B.counts[j];
      if (x[1] * y[0] !== y[1] * x[0]) { out[A.items[i]] = true; }
    }
    return out;
  }
  function haystack(r, i) {
    var key = r + ":" + i;
    if (!(key in hay)) {
      var R = RUNS[r], s = R.samples[i], parts = [R.items[s[0]], S[s[3]], S[s[4]], S[s[9]]];
      for (var t = 0; t < s[5].length; t++) { parts.push(S[s[5][t]], S[s[6][t]]); }
      hay[key] = parts.join("\n").toLowerCase();
    }
    return hay[key];
  }
  function filter() {
    var R = RUNS[st.run], out = [], q = st.q.toLowerCase();
    var flips = st.flips && st.other >= 0 ? flipped(st.run, st.other) : null;
    for (var i = 0; i < R.samples.length; i++) {
      var s = R.samples[i], item = R.items[s[0]];
      if (st.outcome && D.outcomes[s[2]] !== st.outcome) { continue; }
      if (st.problem && item !== st.problem && R.groups[s[0]] !== st.problem) { continue; }
      if (flips && !flips[item]) { continue; }
      if (q && haystack(st.run, i).indexOf(q) < 0) { continue; }
      out.push(i);
    }
    matched = out;
  }
  function otherCell(item) {
    if (st.other < 0) { return ""; }
    var j = indexOfItems(st.other)[item];
    if (j === undefined) { return "not in " + RUNS[st.other].label; }
    var c = RUNS[st.other].counts[j];
    return c[1] + "/" + c[0] + " passed";
  }
  function renderList() {
    var R = RUNS[st.run], body = $("v-rows");
    var pages = Math.max(1, Math.ceil(matched.length / PAGE));
    st.page = Math.min(st.page, pages - 1);
    body.textContent = "";
    var start = st.page * PAGE, end = Math.min(matched.length, start + PAGE);
    for (var k = start; k < end; k++) {
      var i = matched[k], s = R.samples[i], tr = el("tr");
      tr.setAttribute("data-sample", String(i));
      if (i === st.open) { tr.className = "open"; }
      tr.appendChild(el("td", "mono", R.items[s[0]]));
      tr.appendChild(el("td", "num", String(s[1])));
      var td = el("td"); td.appendChild(chip(D.outcomes[s[2]])); tr.appendChild(td);
      tr.appendChild(el("td", "", S[s[3]] || S[s[9]]));
      tr.appendChild(el("td", "", otherCell(R.items[s[0]])));
      body.appendChild(tr);
    }
    $("v-count").textContent = matched.length
      ? (start + 1) + "–" + end + " of " + matched.length + " sample(s) · page " + (st.page + 1) + " of " + pages
      : "no sample matches";
    $("v-prev").disabled = st.page === 0;
    $("v-next").disabled = st.page >= pages - 1;
    $("v-other-head").textContent = st.other >= 0 ? RUNS[st.other].label : "side by side";
  }
  function pre(text, context) {
    var p = el("pre");
    if (context) { p.appendChild(el("span", "ctx", context)); }
    p.appendChild(document.createTextNode(text));
    return p;
  }
  function pane(r, i) {
    var R = RUNS[r], s = R.samples[i], box = el("div", "v-pane");
    box.setAttribute("data-run", String(r));
    box.appendChild(el("h3", "", R.label + " · " + R.items[s[0]] + " · sample " + s[1]));
    var line = el("p"); line.appendChild(chip(D.outcomes[s[2]]));
    var bits = [S[s[3]], S[s[10]], D.modes[s[8]] !== "completion" ? D.modes[s[8]] + " mode" : ""];
    line.appendChild(document.createTextNode(" " + bits.filter(function (b) { return b; }).join(" · ")));
    box.appendChild(line);
    if (S[s[9]]) { box.appendChild(el("h4", "", "generation error")); box.appendChild(pre(S[s[9]])); }
    var turns = Math.max(s[5].length, s[7].length), prompt = "";
    for (var t = 0; t < turns; t++) {
      var label = turns > 1 ? "turn " + (t + 1) + ": " : "";
      if (t < s[7].length) {
        var p = s[7][t], context = "", fresh;
        if (typeof p === "number") { fresh = S[p]; }
        else { context = prompt + S[s[6][t - 1]]; fresh = S[p[0]]; }
        var h = el("h4", "", label + (D.modes[s[8]] === "chat" ? "user message" : "prompt"));
        box.appendChild(h);
        box.appendChild(pre(fresh, context));
        box.lastChild.className = "prompt";
        prompt = context + fresh;
      }
      if (t < s[5].length) {
        var raw = S[s[5][t]], text = S[s[6][t]];
        box.appendChild(el("h4", "", label + "completion, raw"));
        box.appendChild(pre(raw)); box.lastChild.className = "raw";
        box.appendChild(el("h4", "", label + "completion, postprocessed" + (raw === text ? " (the same)" : "")));
        box.appendChild(pre(text)); box.lastChild.className = "completion";
      }
    }
    if (!s[7].length && !s[5].length) { box.appendChild(el("p", "note", "no sample recorded")); }
    if (S[s[4]]) { box.appendChild(el("h4", "", "stderr, tail")); box.appendChild(pre(S[s[4]])); }
    var test = R.tests[s[0]];
    if (test >= 0) {
      box.appendChild(el("h4", "", "test"));
      box.appendChild(pre(S[test])); box.lastChild.className = "test";
      if (R.harness >= 0) {
        var d = el("details"); d.appendChild(el("summary", "", "the harness every test starts with"));
        d.appendChild(pre(S[R.harness])); box.appendChild(d);
      }
    }
    return box;
  }
  function partner(i) {
    var R = RUNS[st.run], s = R.samples[i], O = RUNS[st.other], item = R.items[s[0]], first = -1;
    for (var k = 0; k < O.samples.length; k++) {
      if (O.items[O.samples[k][0]] !== item) { continue; }
      if (O.samples[k][1] === s[1]) { return k; }
      if (first < 0) { first = k; }
    }
    return first;
  }
  function renderDetail() {
    var box = $("v-detail");
    box.textContent = "";
    box.className = "v-detail";
    if (st.open < 0) { return; }
    box.appendChild(pane(st.run, st.open));
    if (st.other >= 0) {
      var k = partner(st.open);
      if (k >= 0) { box.appendChild(pane(st.other, k)); box.className = "v-detail two"; }
      else { box.appendChild(el("p", "note", "not in " + RUNS[st.other].label)); }
    }
  }
  function fillRunControls() {
    var R = RUNS[st.run], sel = $("v-outcome"), seen = {}, i;
    for (i = 0; i < R.samples.length; i++) { seen[R.samples[i][2]] = true; }
    sel.length = 1;
    for (i = 0; i < D.outcomes.length; i++) {
      if (seen[i]) { var o = el("option", "", D.outcomes[i]); o.value = D.outcomes[i]; sel.appendChild(o); }
    }
    sel.value = st.outcome;
    var other = $("v-other");
    other.length = 1;
    for (i = 0; i < RUNS.length; i++) {
      if (i !== st.run && RUNS[i].bench === R.bench && RUNS[i].samples.length) {
        var op = el("option", "", RUNS[i].label); op.value = String(i); other.appendChild(op);
      }
    }
    if (st.other >= 0 && (st.other === st.run || RUNS[st.other].bench !== R.bench)) { st.other = -1; }
    other.value = String(st.other);
    $("v-flips").disabled = st.other < 0;
    $("v-flips").checked = st.flips && st.other >= 0;
    var list = $("v-problems"), groups = {};
    list.textContent = "";
    for (i = 0; i < R.items.length; i++) {
      if (R.groups[i] !== R.items[i] && !groups[R.groups[i]]) {
        groups[R.groups[i]] = true;
        var g = el("option"); g.value = R.groups[i]; list.appendChild(g);
      }
      var it = el("option"); it.value = R.items[i]; list.appendChild(it);
    }
    $("v-problem").value = st.problem;
    $("v-run").value = String(st.run);
    $("v-notes").textContent = R.notes.join("; ");
  }
  function refresh(keepPage) {
    if (!keepPage) { st.page = 0; }
    filter();
    if (st.open >= 0 && matched.indexOf(st.open) < 0) { st.open = -1; }
    renderList();
    renderDetail();
  }
  function openSample(i, scroll) {
    st.open = i;
    var k = matched.indexOf(i);
    if (k >= 0) { st.page = Math.floor(k / PAGE); }
    renderList();
    renderDetail();
    if (scroll) { $("v-detail").scrollIntoView({block: "start"}); }
  }
  function select(run, other, item) {
    st.run = run; st.other = other; st.problem = item; st.outcome = ""; st.q = ""; st.flips = false;
    $("v-search").value = "";
    fillRunControls();
    refresh(false);
  }
  function route() {
    var m = /^#(sample|problem|pair)=(.*)$/.exec(location.hash);
    if (!m) { return false; }
    var parts = m[2].split("/").map(decodeURIComponent), run = parseInt(parts[0], 10);
    if (!(run >= 0 && run < RUNS.length) || !RUNS[run].samples.length) { return false; }
    var other = -1, item = parts[1], index = -1;
    if (m[1] === "pair") { other = parseInt(parts[1], 10); item = parts[2]; }
    if (m[1] === "sample") { index = parseInt(parts[2], 10); }
    if (!(other >= 0 && other < RUNS.length)) { other = -1; }
    var R = RUNS[run], pick = -1, firstBad = -1, first = -1;
    for (var i = 0; i < R.samples.length; i++) {
      var s = R.samples[i];
      if (R.items[s[0]] !== item) { continue; }
      if (first < 0) { first = i; }
      if (firstBad < 0 && D.outcomes[s[2]] !== "passed") { firstBad = i; }
      if (s[1] === index) { pick = i; }
    }
    if (first < 0) { return false; }
    if (pick < 0) { pick = firstBad >= 0 ? firstBad : first; }
    select(run, other, item);
    openSample(pick, true);
    return true;
  }
  var sel = $("v-run");
  for (var r = 0; r < RUNS.length; r++) {
    var o = el("option", "", RUNS[r].label + (RUNS[r].samples.length ? "" : " (no samples)"));
    o.value = String(r); o.disabled = !RUNS[r].samples.length; sel.appendChild(o);
  }
  for (r = 0; r < RUNS.length && !RUNS[r].samples.length; r++) { /* the first run with samples */ }
  st.run = r < RUNS.length ? r : 0;
  sel.addEventListener("change", function () { select(parseInt(sel.value, 10), st.other, ""); });
  $("v-other").addEventListener("change", function () {
    st.other = parseInt(this.value, 10); $("v-flips").disabled = st.other < 0;
    if (st.other < 0) { st.flips = false; $("v-flips").checked = false; }
    refresh(true);
  });
  $("v-outcome").addEventListener("change", function () { st.outcome = this.value; refresh(false); });
  $("v-problem").addEventListener("change", function () { st.problem = this.value.trim(); refresh(false); });
  $("v-flips").addEventListener("change", function () { st.flips = this.checked; refresh(false); });
  var timer = null;
  $("v-search").addEventListener("input", function () {
    var v = this.value;
    clearTimeout(timer);
    timer = setTimeout(function () { st.q = v; refresh(false); }, 200);
  });
  $("v-prev").addEventListener("click", function () { st.page -= 1; renderList(); });
  $("v-next").addEventListener("click", function () { st.page += 1; renderList(); });
  $("v-rows").addEventListener("click", function (ev) {
    var tr = ev.target.closest("tr");
    if (tr) { openSample(parseInt(tr.getAttribute("data-sample"), 10), false); }
  });
  window.addEventListener("hashchange", route);
  if (RUNS.length && !route()) { fillRunControls(); refresh(false); }
  document.body.setAttribute("data-viewer-ready", "1");
})();
"""


def script_hash() -> str:
    """The CSP source that allows exactly this inline script."""
    return "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode("ascii")
