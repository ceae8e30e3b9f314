// The meeting list: rows still processing follow their meeting's status without a reload.
(function () {
  "use strict";

  var rows = Array.prototype.filter.call(
    document.querySelectorAll(".meeting-row"),
    function (row) { return MI.isInProgress(row.getAttribute("data-status")); }
  );
  var delay = MI.POLL_MS;

  function update(row, meeting) {
    row.setAttribute("data-status", meeting.status);
    MI.setBadge(row.querySelector('[data-role="status"]'), meeting.status);
    if (meeting.status === "failed") {
      var error = row.querySelector('[data-role="error"]');
      error.textContent = meeting.error || "";
      error.hidden = false;
    }
  }

  function tick() {
    var checks = rows.map(function (row) {
      var id = row.getAttribute("data-meeting-id");
      return MI.getJson("/api/v1/meetings/" + id).then(function (reply) {
        return {row: row, reply: reply};
      });
    });
    Promise.all(checks).then(function (results) {
      var expired = false;
      var failedNetwork = false;
      results.forEach(function (result) {
        var reply = result.reply;
        if (reply.status === 401) {
          expired = true;
        } else if (reply.status === 404) {
          MI.setBadge(result.row.querySelector('[data-role="status"]'), "deleted");
          rows.splice(rows.indexOf(result.row), 1);
        } else if (reply.status === 200 && reply.body) {
          update(result.row, reply.body);
          if (!MI.isInProgress(reply.body.status)) {
            rows.splice(rows.indexOf(result.row), 1);
          }
        } else {
          failedNetwork = true;
        }
      });
      if (expired) {
        MI.sessionExpired();
        return;
      }
      // Back off while the server does not answer; back to normal once it does.
      delay = failedNetwork ? Math.min(delay * 2, MI.POLL_MAX_MS) : MI.POLL_MS;
      if (rows.length) {
        window.setTimeout(tick, delay);
      }
    });
  }

  if (rows.length) {
    window.setTimeout(tick, delay);
  }
})();
