// incidentbot local console: live updates by long-polling the local Slack stand-in, and forms
// sent with fetch (every form also works without JavaScript). Plain JS, no build step.
(function () {
  "use strict";
  var root = document.getElementById("console");
  if (!root) return;
  var user = root.dataset.user, userName = root.dataset.userName, channel = root.dataset.channel;
  var version = parseInt(root.dataset.version, 10) || 0;
  var modalKey = root.dataset.modalKey || "";
  var feed = document.getElementById("feed");
  var modal = document.getElementById("modal");
  var side = document.getElementById("side");
  var statusBox = document.getElementById("status");
  var live = document.getElementById("live");
  var openThreads = new Set();
  var refreshing = null;

  // Same-origin proof for every state-changing request (the server also checks Origin and Host).
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function qs(obj) { return new URLSearchParams(obj).toString(); }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function showStatus(text, isError) {
    if (!text) { statusBox.hidden = true; statusBox.textContent = ""; return; }
    statusBox.hidden = false;
    statusBox.textContent = text;  // text, never HTML
    statusBox.className = "flash" + (isError ? " error" : "");
  }

  function nearBottom() {
    return feed.scrollHeight - feed.scrollTop - feed.clientHeight < 80;
  }

  function apply(d) {
    var stick = nearBottom();
    version = Math.max(version, d.version);
    patchFeed(d.feed_html);
    if (stick) feed.scrollTop = feed.scrollHeight;
    if (d.modal_key !== modalKey) { modal.innerHTML = d.modal_html; modalKey = d.modal_key; }
    side.innerHTML = d.side_html;
  }

  // Keep unchanged messages as they are (a click in progress is not lost to a re-render);
  // swap in only messages whose server-rendered HTML changed. The HTML is autoescaped server-side.
  function patchFeed(html) {
    var tpl = document.createElement("template");
    tpl.innerHTML = html;
    var old = new Map();
    Array.prototype.forEach.call(feed.children, function (el) { if (el._src) old.set(el._src, el); });
    var next = Array.prototype.map.call(tpl.content.children, function (n) {
      var src = n.outerHTML;
      var kept = old.get(src);
      if (kept) { old.delete(src); return kept; }
      n._src = src;
      n.querySelectorAll("details.thread").forEach(function (el) {
        if (openThreads.has(el.dataset.thread)) el.open = true;
      });
      return n;
    });
    var same = next.length === feed.children.length && next.every(function (n, i) { return feed.children[i] === n; });
    if (!same) feed.replaceChildren.apply(feed, next);
  }

  function refresh() {
    if (refreshing) return refreshing;
    refreshing = fetch("/console/state?" + qs({ user: user, channel: channel }), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(apply)
      .finally(function () { refreshing = null; });
    return refreshing;
  }

  async function loop() {
    for (;;) {
      try {
        var r = await fetch("/localslack/state/wait?" + qs({ after: version, timeout: 25 }));
        var d = await r.json();
        live.classList.remove("down");
        if (d.version > version) await refresh();
      } catch (e) {
        live.classList.add("down");
        await sleep(1500);
      }
    }
  }

  document.addEventListener("toggle", function (e) {
    var el = e.target;
    if (el.matches && el.matches("details.thread")) {
      if (el.open) openThreads.add(el.dataset.thread); else openThreads.delete(el.dataset.thread);
    }
  }, true);

  document.addEventListener("submit", async function (e) {
    var form = e.target;
    if (!form.hasAttribute("data-ajax")) return;
    e.preventDefault();
    var action = (e.submitter && e.submitter.getAttribute("formaction")) || form.getAttribute("action");
    var body = new URLSearchParams(new FormData(form));
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      var r = await fetch(action, { method: "POST", body: body, headers: { Accept: "application/json", "X-CSRF-Token": csrf } });
      var d = {};
      try { d = await r.json(); } catch (err) { d = { ok: r.ok }; }
      if (!r.ok || d.ok === false) {
        showStatus(d.error || d.detail || ("failed: HTTP " + r.status), true);
      } else {
        showStatus("");
        if (form.id === "command-form") document.getElementById("command-input").value = "";
      }
      if (d.errors && Object.keys(d.errors).length) modalKey = "";  // re-render the form with its errors
      await refresh();
    } catch (err) {
      showStatus("could not reach the bot: " + err, true);
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  });

  // URL buttons open their link; Slack still tells the bot about the click.
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[data-click]");
    if (!a) return;
    var data;
    try { data = JSON.parse(a.dataset.click); } catch (err) { return; }
    fetch("/console/click", { method: "POST", body: new URLSearchParams(data), headers: { Accept: "application/json", "X-CSRF-Token": csrf } }).catch(function () {});
  });

  var picker = document.getElementById("user-select");
  if (picker) picker.addEventListener("change", function () {
    location.href = "/?" + qs({ user: picker.value, channel: channel });
  });

  patchFeed(feed.innerHTML);  // remember what the server sent for each message
  feed.scrollTop = feed.scrollHeight;
  document.getElementById("command-input").focus();
  loop();
})();
