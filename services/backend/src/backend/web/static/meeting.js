// The meeting page: follows processing until it ends, and ties the transcript to the player
// (select a line to play from there; the line being played is highlighted).
(function () {
  "use strict";

  var article = document.getElementById("meeting");
  if (!article) {
    return;
  }
  var meetingId = article.getAttribute("data-meeting-id");
  var player = document.getElementById("player");
  var segments = Array.prototype.slice.call(document.querySelectorAll(".segment"));
  var starts = segments.map(function (li) { return parseFloat(li.getAttribute("data-start")); });
  var current = null;

  // --- processing -------------------------------------------------------------------------

  var delay = MI.POLL_MS;
  var steps = ["queued", "transcribing", "analyzing", "done"];

  function showProgress(meeting) {
    MI.setBadge(document.getElementById("status-badge"), meeting.status);
    article.setAttribute("data-status", meeting.status);
    var reached = steps.indexOf(meeting.status);
    document.querySelectorAll(".step").forEach(function (step, index) {
      step.classList.toggle("step-done", index < reached);
      if (index === reached) {
        step.setAttribute("aria-current", "step");
      } else {
        step.removeAttribute("aria-current");
      }
    });
    var bar = document.getElementById("progress");
    if (bar && typeof meeting.progress === "number") {
      bar.value = meeting.progress;
    }
  }

  function poll() {
    MI.getJson("/api/v1/meetings/" + meetingId).then(function (reply) {
      if (reply.status === 401) {
        MI.sessionExpired();
        return;
      }
      if (reply.status === 404) {
        var note = document.getElementById("processing-note");
        note.textContent = "This meeting was deleted meanwhile.";
        MI.setBadge(document.getElementById("status-badge"), "deleted");
        return;
      }
      if (reply.status === 200 && reply.body) {
        delay = MI.POLL_MS;
        showProgress(reply.body);
        if (!MI.isInProgress(reply.body.status)) {
          // The results are rendered by the server: one reload shows all of them.
          window.location.reload();
          return;
        }
      } else {
        delay = Math.min(delay * 2, MI.POLL_MAX_MS);
      }
      window.setTimeout(poll, delay);
    });
  }

  if (MI.isInProgress(article.getAttribute("data-status"))) {
    window.setTimeout(poll, delay);
  }

  // --- player and transcript ----------------------------------------------------------------

  if (!player) {
    return;
  }

  player.addEventListener("error", function () {
    document.getElementById("player-error").hidden = false;
  });

  // The last segment that starts at or before `time` (segments are in time order).
  function segmentAt(time) {
    var low = 0;
    var high = starts.length - 1;
    var found = -1;
    while (low <= high) {
      var middle = (low + high) >> 1;
      if (starts[middle] <= time + 0.001) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found === -1 ? null : segments[found];
  }

  function highlight(segment) {
    if (segment === current) {
      return;
    }
    if (current) {
      current.classList.remove("is-playing");
      current.removeAttribute("aria-current");
    }
    current = segment;
    if (segment) {
      segment.classList.add("is-playing");
      segment.setAttribute("aria-current", "true");
    }
  }

  function playFrom(seconds) {
    player.currentTime = seconds;
    highlight(segmentAt(seconds));
    var playing = player.play();
    if (playing && playing.catch) {
      // No audio device, or the browser refused: the position is set all the same.
      playing.catch(function () {});
    }
  }

  segments.forEach(function (segment) {
    var link = segment.querySelector(".segment-link");
    link.addEventListener("click", function (event) {
      event.preventDefault();
      playFrom(parseFloat(segment.getAttribute("data-start")));
    });
  });

  player.addEventListener("timeupdate", function () {
    highlight(segmentAt(player.currentTime));
  });

  // Opened from a search hit (?t=...): start the player where the words were said.
  var moment = parseFloat(article.getAttribute("data-moment"));
  if (!isNaN(moment)) {
    player.currentTime = moment;
    highlight(segmentAt(moment));
    var target = document.getElementById("moment");
    if (target) {
      target.scrollIntoView({block: "center"});
    }
  }
})();
