// Shared by every page: the CSRF token, JSON calls to the API with the session cookie, and
// what to show when the session has expired. Plain scripts, no build step: window.MI.
(function () {
  "use strict";

  var IN_PROGRESS = ["queued", "transcribing", "analyzing"];

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function statusLabels() {
    try {
      return JSON.parse(document.body.getAttribute("data-status-labels") || "{}");
    } catch (error) {
      return {};
    }
  }

  // The session ended while the page was open: say so, and offer to come back here.
  function sessionExpired() {
    var note = document.getElementById("session-expired");
    var link = document.getElementById("session-expired-link");
    if (link) {
      link.href = "/sign-in?reason=expired&next=" +
        encodeURIComponent(location.pathname + location.search);
    }
    if (note) {
      note.hidden = false;
    }
  }

  // GET a JSON document; resolves to {status, body} (body null when it is not JSON) and to
  // status 0 when the network failed, so callers decide without try/catch everywhere.
  function getJson(url) {
    return fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          return {status: response.status, body: body};
        });
      })
      .catch(function () { return {status: 0, body: null}; });
  }

  function setBadge(badge, status) {
    var labels = statusLabels();
    badge.className = "badge badge-" + status;
    badge.textContent = labels[status] || status.charAt(0).toUpperCase() + status.slice(1);
  }

  function isInProgress(status) {
    return IN_PROGRESS.indexOf(status) !== -1;
  }

  document.querySelectorAll(".js-only").forEach(function (element) {
    element.hidden = false;
  });

  window.MI = {
    csrfToken: csrfToken,
    getJson: getJson,
    isInProgress: isInProgress,
    sessionExpired: sessionExpired,
    setBadge: setBadge,
    POLL_MS: 2000,
    POLL_MAX_MS: 15000
  };
})();
