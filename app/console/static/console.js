// OpsConductor console: live parts and confirmations, in plain JS served by the console itself.
//
// <div data-refresh="/console/incidents?fragment=1" data-interval="5"> is replaced every
// `interval` seconds by what its URL answers (a server-rendered fragment whose root element has
// the same id; without data-refresh it is final and stops refreshing). Refreshing pauses
// while the tab is hidden and while focus is inside the part (so a half-typed form survives).
// <form data-confirm="Roll back?"> asks before submitting.
(function () {
  "use strict";

  function refresh(part) {
    if (document.hidden || part.contains(document.activeElement)) return;
    fetch(part.dataset.refresh, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (reply) {
        if (reply.redirected || reply.status === 401 || reply.status === 403) {
          window.location.reload(); // the session ended: the page takes the browser to sign in
          return null;
        }
        return reply.ok ? reply.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        var template = document.createElement("template");
        template.innerHTML = html.trim();
        var fresh = template.content.firstElementChild;
        if (!fresh || fresh.id !== part.id) return;
        part.replaceWith(fresh);
        // a part that is done (an execution that finished) comes back without data-refresh: it stops there
        if (fresh.dataset.refresh) watch(fresh);
      })
      .catch(function () { /* offline for a moment: the next tick tries again */ });
  }

  function watch(part) {
    var seconds = Math.max(2, parseInt(part.dataset.interval || "5", 10));
    var timer = window.setInterval(function () {
      if (!document.body.contains(part)) { window.clearInterval(timer); return; } // replaced: its successor ticks
      refresh(part);
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(watch);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) document.querySelectorAll("[data-refresh]").forEach(refresh);
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  });
})();
