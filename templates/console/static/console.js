/* The console's only script: live updates over /console/ws, reply helpers, keyboard shortcuts.
   Everything works without it (forms post, pages reload); this makes it pleasant all day. */
(function () {
  "use strict";
  var body = document.body;
  var liveUrl = body.getAttribute("data-live");
  var statusEl = document.querySelector("[data-live-status]");
  var baseTitle = document.title;

  function setLive(on) { if (statusEl) statusEl.setAttribute("data-live-status", on ? "on" : "off"); }

  function nearBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 80; }

  function scroller(region) { return region.querySelector(".timeline") || region; }

  function busy(region) {
    var a = document.activeElement;
    return a && region.contains(a) && (a.tagName === "INPUT" || a.tagName === "TEXTAREA") && a.value;
  }

  function refreshRegion(region) {
    if (busy(region)) { region.setAttribute("data-stale", "1"); return Promise.resolve(); }
    var url = region.getAttribute("data-live-src");
    var sc = scroller(region), stick = nearBottom(sc), top = sc.scrollTop;
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
      if (r.status === 401) { window.location.reload(); return null; }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html === null || html === undefined) return;
      region.innerHTML = html;
      region.removeAttribute("data-stale");
      var sc2 = scroller(region);
      sc2.scrollTop = stick ? sc2.scrollHeight : top;
      body.dispatchEvent(new CustomEvent("console:refreshed", { detail: region }));
    }).catch(function () {});
  }

  function refreshCount() {
    var badge = document.querySelector("[data-count-src]");
    if (!badge) return;
    fetch(badge.getAttribute("data-count-src"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        badge.textContent = data.waiting;
        badge.hidden = !data.waiting;
        badge.classList.toggle("urgent", data.urgent > 0);
        document.title = (data.waiting ? "(" + data.waiting + ") " : "") + baseTitle;
      }).catch(function () {});
  }

  function refreshAll() {
    document.querySelectorAll("[data-live-src]").forEach(refreshRegion);
    refreshCount();
  }

  document.addEventListener("focusout", function (e) {
    var region = e.target.closest && e.target.closest("[data-live-src][data-stale]");
    if (region) setTimeout(function () { refreshRegion(region); }, 50);
  });

  var backoff = 1000, socket = null;
  function connect() {
    if (!liveUrl || !window.WebSocket) return;
    var proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(proto + window.location.host + liveUrl);
    socket.onopen = function () { backoff = 1000; setLive(true); };
    socket.onmessage = function (e) {
      var msg; try { msg = JSON.parse(e.data); } catch (err) { return; }
      // "hello": catch up on whatever changed between rendering the page and connecting.
      if (msg.type === "changed" || msg.type === "hello") refreshAll();
    };
    socket.onclose = function () {
      setLive(false);
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }
  connect();
  refreshCount();

  /* waiting times keep counting between updates */
  function since(seconds, zh) {
    if (seconds < 60) return zh ? seconds + "秒" : seconds + " s";
    if (seconds < 3600) return zh ? Math.floor(seconds / 60) + "分钟" : Math.floor(seconds / 60) + " min";
    if (seconds < 86400) return zh ? Math.floor(seconds / 3600) + "小时" : Math.floor(seconds / 3600) + " h";
    return zh ? Math.floor(seconds / 86400) + "天" : Math.floor(seconds / 86400) + " d";
  }
  setInterval(function () {
    var zh = body.getAttribute("data-lang") === "zh";
    document.querySelectorAll("[data-since]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("data-since"));
      if (!isNaN(t)) el.textContent = since(Math.max(0, Math.round((Date.now() - t) / 1000)), zh);
    });
  }, 10000);

  /* the reply composer */
  var reply = document.getElementById("reply-text");
  var counter = document.querySelector("[data-counter]");
  function count() {
    if (!reply || !counter) return;
    var n = reply.value.length;
    var zh = body.getAttribute("data-lang") === "zh";
    counter.textContent = n ? (zh ? n + " 字" : n + " characters") : "";
  }
  if (reply) { reply.addEventListener("input", count); count(); }
  document.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest("[data-insert]");
    if (!link || !reply) return;
    e.preventDefault();
    var text = link.getAttribute("data-insert");
    var start = reply.selectionStart, end = reply.selectionEnd, v = reply.value;
    if (document.activeElement !== reply) { start = end = v.length; }
    var glue = start > 0 && v.charAt(start - 1) !== "\n" ? "\n" : "";
    reply.value = v.slice(0, start) + glue + text + v.slice(end);
    var slug = link.getAttribute("data-article-slug");
    var hidden = document.querySelector("[data-article]");
    if (slug && hidden) hidden.value = slug;
    reply.focus();
    reply.selectionStart = reply.selectionEnd = start + glue.length + text.length;
    count();
  });
  document.querySelectorAll("form[data-composer]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var b = form.querySelector("[data-send]");
      if (b) { setTimeout(function () { b.disabled = true; }, 0); }
    });
  });
  document.querySelectorAll("[data-claim]").forEach(function (b) {
    b.form.addEventListener("submit", function () { setTimeout(function () { b.disabled = true; }, 0); });
  });

  /* character counts for the knowledge editor's short answers */
  document.querySelectorAll("textarea[data-count]").forEach(function (t) {
    var label = t.parentElement.querySelector("[data-limit]");
    function show() { if (label) label.textContent = t.value.length + " / " + label.getAttribute("data-limit"); }
    t.addEventListener("input", show); show();
  });

  /* keep the thread at its newest message */
  var thread = document.querySelector("[data-keep-bottom] .timeline");
  if (thread) thread.scrollTop = thread.scrollHeight;

  /* keyboard: j/k move in the queue, Enter opens, t takes; / searches; Ctrl+Enter sends */
  var focusIndex = -1;
  function items() { return Array.prototype.slice.call(document.querySelectorAll(".qitem")); }
  function focusItem(i) {
    var list = items(); if (!list.length) return;
    focusIndex = Math.max(0, Math.min(i, list.length - 1));
    list.forEach(function (el) { el.classList.remove("kb-focus"); });
    var el = list[focusIndex]; el.classList.add("kb-focus"); el.focus({ preventScroll: true });
    el.scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target === reply) {
      e.preventDefault(); if (reply.form.requestSubmit) reply.form.requestSubmit(); else reply.form.submit(); return;
    }
    if (tag === "input" || tag === "textarea" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/") {
      var s = document.querySelector("[data-hotkey='/']") || document.querySelector("input[type=search]");
      if (s) { e.preventDefault(); s.focus(); }
    } else if (e.key === "j") { focusItem(focusIndex + 1); }
    else if (e.key === "k") { focusItem(focusIndex - 1); }
    else if ((e.key === "Enter" || e.key === "t") && focusIndex >= 0) {
      var el = items()[focusIndex]; if (!el) return;
      if (e.key === "t") { var b = el.querySelector("[data-claim]"); if (b) b.form.submit(); }
      else { var a = el.querySelector("a.btn"); if (a) window.location.href = a.href; }
    }
  });
  body.addEventListener("console:refreshed", function () { if (focusIndex >= 0) focusItem(focusIndex); });
})();
