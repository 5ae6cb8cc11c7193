// The rollout page: polls the rollout's status every 2 s, shows a batch's
// clusters a page at a time on demand, and posts actions with the
// dashboard's CSRF header.
(function () {
  "use strict";
  var root = document.getElementById("rollout");
  var name = root.dataset.name;
  var api = "/api/rollouts/" + encodeURIComponent(name);
  var batch = null, page = 0;

  function $(id) { return document.getElementById(id); }
  function text(id, v) { var e = $(id); if (e) e.textContent = v; }
  function el(tag, cls, txt) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (txt !== undefined) e.textContent = txt;
    return e;
  }
  function row(cells, th) {
    var tr = el("tr");
    cells.forEach(function (c) {
      var td = el(th ? "th" : "td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      tr.appendChild(td);
    });
    return tr;
  }
  function time(t) { return t ? new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : ""; }

  function render(st) {
    $("st-error").hidden = true;
    var state = st.state;
    if (st.execution && ["terminated", "failed", "timed-out", "canceled"].indexOf(st.execution.status) >= 0) state = st.execution.status;
    var s = $("st-state");
    s.textContent = state;
    s.className = "state s-" + state;
    root.dataset.state = state;
    text("st-version", "to " + st.targetVersion);
    var c = st.counts;
    text("c-done", c.done); text("c-total", st.total);
    ["pending", "inFlight", "held", "verifying", "failed", "aborted", "skipped"].forEach(function (k) { text("c-" + k, c[k]); });
    text("c-done2", c.done);
    $("st-bar").value = st.total ? Math.floor(c.done * 100 / st.total) : 0;
    text("st-waiting", st.waitingFor ? "waiting for " + st.waitingFor : "");
    var p = $("st-paused");
    if (st.paused) {
      p.hidden = false;
      p.textContent = "Paused by " + st.paused.actor + " at " + time(st.paused.at) + ": " + st.paused.reason +
        (st.paused.incident ? " (incident " + st.paused.incident.kind + " on " + st.paused.incident.clusterId + ")" : "");
    } else { p.hidden = true; p.textContent = ""; }
    text("st-plan", st.planHash || "–");
    text("st-requester", st.requester || "–");
    text("st-failures", st.failures + " of budget " + st.failureBudget);
    text("st-read", time(st.readAt));
    var hash = $("plan-hash");
    if (hash && !hash.value && st.state === "awaiting-approval") hash.placeholder = st.planHash;

    var phases = $("phases");
    phases.textContent = "";
    (st.phases || []).forEach(function (ph) {
      var t = el("table");
      var cap = el("caption", "", ph.name + " — " + ph.state + (ph.concurrency ? " · concurrency " + ph.concurrency : "") + (ph.requireApproval ? " · needs approval" : ""));
      t.appendChild(cap);
      t.appendChild(row(["batch", "state", "pending", "in flight", "held", "verifying", "done", "failed", "skipped"], true));
      groups(ph.batches || []).forEach(function (g) {
        var b = g[0], last = g[g.length - 1];
        var a = el("span", "batch", "#" + b.number + (g.length > 1 ? "–#" + last.number + " (" + g.length + " batches)" : ""));
        a.dataset.batch = b.number;
        a.addEventListener("click", function () { batch = b.number; page = 0; loadBatch(); });
        var k = { pending: 0, inFlight: 0, held: 0, verifying: 0, done: 0, failed: 0, skipped: 0 };
        g.forEach(function (x) { Object.keys(k).forEach(function (f) { k[f] += x.counts[f]; }); });
        t.appendChild(row([a, b.state, k.pending, k.inFlight, k.held, k.verifying, k.done, k.failed, k.skipped]));
      });
      phases.appendChild(t);
    });

    var inc = $("incidents");
    inc.textContent = "";
    text("inc-count", st.incidentCount ? "last " + st.incidents.length + " of " + st.incidentCount : "none");
    if (st.incidents.length) inc.appendChild(row(["at", "kind", "batch", "cluster", "monitor", "message"], true));
    st.incidents.slice().reverse().forEach(function (i) {
      inc.appendChild(row([time(i.at), i.kind, i.batch, i.clusterId, i.monitor || "", i.message]));
    });
    var au = $("audit");
    au.textContent = "";
    text("audit-count", st.auditCount ? "last " + st.audit.length + " of " + st.auditCount : "none");
    if (st.audit.length) au.appendChild(row(["at", "actor", "action", "reason", "outcome"], true));
    st.audit.slice().reverse().forEach(function (a) {
      au.appendChild(row([time(a.at), a.actor, a.action, a.reason || "", a.outcome]));
    });
  }

  // groups folds runs of more than 3 pending or completed batches into one
  // row, so a phase of hundreds of batches stays a short table.
  function groups(batches) {
    var out = [], run = [];
    function flush() {
      if (run.length > 3) out.push(run); else run.forEach(function (b) { out.push([b]); });
      run = [];
    }
    batches.forEach(function (b) {
      var quiet = b.state === "pending" || b.state === "completed";
      if (run.length && (!quiet || run[0].state !== b.state)) flush();
      if (quiet) run.push(b); else out.push([b]);
    });
    flush();
    return out;
  }

  function poll() {
    fetch(api, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.statusText); return j; }); })
      .then(render)
      .catch(function (e) { var x = $("st-error"); x.hidden = false; x.textContent = String(e.message || e); })
      .finally(function () { setTimeout(poll, 2000); });
  }

  function loadBatch() {
    fetch(api + "/batches/" + batch + "?page=" + page)
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.statusText); return j; }); })
      .then(function (b) {
        $("batch").hidden = false;
        page = b.page;
        text("batch-title", "Batch " + b.number + " (" + b.phase + ", " + b.state + "): " + b.listed + " clusters listed");
        var t = el("table");
        t.appendChild(row(["cluster", "product", "state", "broker", "message"], true));
        b.clusters.forEach(function (c) {
          t.appendChild(row([c.id, c.product, c.state, c.brokers ? c.broker + "/" + c.brokers : "", c.message || ""]));
        });
        var body = $("batch-body");
        body.textContent = "";
        body.appendChild(t);
        text("batch-page", "page " + (b.page + 1) + " of " + b.pages);
        $("batch-prev").disabled = b.page <= 0;
        $("batch-next").disabled = b.page + 1 >= b.pages;
      })
      .catch(function (e) { $("batch").hidden = false; text("batch-body", String(e.message || e)); });
  }
  $("batch-prev").addEventListener("click", function () { page--; loadBatch(); });
  $("batch-next").addEventListener("click", function () { page++; loadBatch(); });

  document.querySelectorAll("button[data-action]").forEach(function (b) {
    b.addEventListener("click", function () {
      var action = b.dataset.action;
      var body = { reason: $("reason").value };
      if ($("actor")) body.actor = $("actor").value;
      if (action === "approve") { body.planHash = $("plan-hash").value; body.phase = $("phase").value; }
      if (action === "abort" && !confirm("Abort " + name + " for good?")) return;
      var out = $("act-result");
      out.className = "";
      out.textContent = action + "…";
      fetch(api + "/" + action, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Fleet-Dashboard": "1" },
        body: JSON.stringify(body)
      })
        .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || r.statusText); return j; }); })
        .then(function (res) { out.textContent = action + ": " + (res.message || res.state); })
        .catch(function (e) { out.className = "err"; out.textContent = action + ": " + (e.message || e); });
    });
  });
  poll();
})();
