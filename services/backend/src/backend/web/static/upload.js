// The upload page: checks size and type before sending (limits come from the server, on the
// form's data- attributes), sends with XMLHttpRequest to show progress, and shows the API's
// own message when it refuses the file.
(function () {
  "use strict";

  var form = document.getElementById("upload-form");
  var input = document.getElementById("file");
  var dropzone = document.getElementById("dropzone");
  var button = document.getElementById("upload-button");
  var errorBox = document.getElementById("upload-error");
  var bar = document.getElementById("upload-progress");
  var statusText = document.getElementById("upload-status-text");
  var maxBytes = function () { return parseInt(form.getAttribute("data-max-bytes"), 10); };
  var extensions = form.getAttribute("data-extensions").split(" ");
  var types = form.getAttribute("data-types").split(" ");

  function mebibytes(bytes) {
    return (bytes / (1024 * 1024)).toFixed(1) + " MiB";
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
    input.setAttribute("aria-invalid", message ? "true" : "false");
  }

  // What is wrong with `file`, or "" when it may be sent.
  function problemWith(file) {
    if (!file) {
      return "Choose a recording to upload first.";
    }
    var dot = file.name.lastIndexOf(".");
    var extension = dot === -1 ? "" : file.name.slice(dot).toLowerCase();
    var looksLikeAudio = extensions.indexOf(extension) !== -1 ||
      types.indexOf(file.type) !== -1 || file.type.indexOf("audio/") === 0;
    if (!looksLikeAudio) {
      return "“" + file.name + "” does not look like an audio recording; upload " +
        form.getAttribute("data-supported") + ".";
    }
    if (file.size > maxBytes()) {
      return "“" + file.name + "” is " + mebibytes(file.size) + "; the limit is " +
        form.getAttribute("data-max-mb") + " MiB. Split or compress the recording, " +
        "then upload it again.";
    }
    if (file.size === 0) {
      return "“" + file.name + "” is empty; choose the recording itself.";
    }
    return "";
  }

  function check() {
    var problem = problemWith(input.files[0]);
    showError(input.files.length ? problem : "");
    return problem;
  }

  function finish(message) {
    bar.hidden = true;
    statusText.textContent = "";
    button.disabled = false;
    showError(message);
  }

  function send() {
    var data = new FormData(form);
    var request = new XMLHttpRequest();
    request.open("POST", "/api/v1/meetings");
    request.setRequestHeader("X-CSRF-Token", MI.csrfToken());
    request.setRequestHeader("Accept", "application/json");
    request.responseType = "json";
    request.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        bar.value = Math.round((event.loaded / event.total) * 100);
        statusText.textContent = "Uploading… " + bar.value + "%";
      }
    });
    request.addEventListener("load", function () {
      var body = request.response || {};
      if (request.status === 202 && body.id) {
        bar.value = 100;
        statusText.textContent = "Uploaded. Opening the meeting…";
        window.location.assign("/meetings/" + body.id);
        return;
      }
      if (request.status === 401) {
        MI.sessionExpired();
        finish("Your session expired, so nothing was uploaded. Sign in again, then upload.");
        return;
      }
      finish(body.detail || ("The server refused the upload (HTTP " + request.status +
        "); nothing was stored. Try again."));
    });
    request.addEventListener("error", function () {
      finish("The upload was cut off (the connection failed), so nothing was stored. " +
        "Check the connection and upload again.");
    });
    button.disabled = true;
    bar.value = 0;
    bar.hidden = false;
    statusText.textContent = "Uploading… 0%";
    request.send(data);
  }

  input.addEventListener("change", check);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var problem = problemWith(input.files[0]);
    showError(problem);
    if (problem) {
      input.focus();
      return;
    }
    send();
  });

  ["dragenter", "dragover"].forEach(function (name) {
    dropzone.addEventListener(name, function (event) {
      event.preventDefault();
      dropzone.classList.add("is-dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    dropzone.addEventListener(name, function () {
      dropzone.classList.remove("is-dragging");
    });
  });
  dropzone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      check();
    }
  });

  button.disabled = false;
})();
