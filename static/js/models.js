/* Models page: draws the charts, and (for admins) retrain / promote / roll back with live progress.
 *
 * Operations POST to the JSON API (/api/v1/models/<kind>/...) with the CSRF
 * token from #models-csrf (or the csrftoken cookie). While a version trains
 * the section polls GET /api/v1/models/<kind>/versions every second and
 * shows its stage and percent in a role="progressbar"; when the version
 * leaves "training" the page reloads (the outcome is announced again after
 * the reload). Errors go to the section's aria-live region.
 */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var RELOAD_MS = 1200;
  var MAX_POLL_FAILURES = 15;
  var FLASH_KEY = "eduplatform.models.flash.";
  // English texts; the page gives them in its language on #models-messages (data-msg-*).
  var MESSAGES = {
    queued: "queued",
    conflict: "A training run is already in progress{why}; following it.",
    unavailable: "The task queue is unavailable; try again in a minute.{why}",
    forbidden: "Not allowed: {why}",
    forbiddenDefault: "only platform admins may operate models.",
    refused: "Refused: {why}",
    refusedDefault: "invalid request.",
    failed: "The request failed (HTTP {status}).",
    failedWhy: "The request failed (HTTP {status}): {why}",
    finished: "{kind} v{version} finished: {status}.",
    finishedReason: "{kind} v{version} finished: {status} ({reason}).",
    done: "Done: {text}",
    reloading: "{text} Reloading…",
    progress: "{kind} v{version}: {stage}, {percent}%",
    queuedProgress: "{kind}: queued, 0%",
    lost: "Lost contact with the server while following the run; reload the page to see its state.",
    starting: "Starting a training run…",
    training: "{kind} v{version} is training.",
    notSent: "The request could not be sent; check the connection and try again.",
    nowActive: "{kind} v{version} is now active.",
    choose: "Choose a version to promote.",
    promoting: "Promoting v{version}…",
    rollingBack: "Rolling back…"
  };

  function t(key, params) {
    var el = document.getElementById("models-messages");
    var attr = "msg" + key.charAt(0).toUpperCase() + key.slice(1);
    var text = (el && el.dataset[attr]) || MESSAGES[key];
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return params && Object.prototype.hasOwnProperty.call(params, name) ? String(params[name]) : whole;
    });
  }

  // A data value (a stage, a status) in the page's language: data-msg-<prefix>-<value> on
  // #models-messages, else the value as the API gives it.
  function word(prefix, value) {
    if (!value) { return value; }
    var el = document.getElementById("models-messages");
    var attr = "msg" + prefix + value.charAt(0).toUpperCase() + value.slice(1);
    return ((el && el.dataset[attr]) || value).trim();
  }

  function csrfToken() {
    var el = document.getElementById("models-csrf");
    if (el && el.dataset.token) { return el.dataset.token; }
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function part(section, selector) { return section.querySelector(selector); }

  function say(section, text, isError) {
    var el = part(section, "[data-message]");
    if (!el) { return; }
    el.textContent = text;
    el.classList.toggle("model-message--error", !!isError);
  }

  function setBusy(section, busy) {
    section.querySelectorAll("[data-action], [data-promote-select]").forEach(function (el) {
      if (busy) {
        el.dataset.wasDisabled = el.disabled ? "true" : "false";
        el.disabled = true;
      } else if (el.dataset.wasDisabled) {
        el.disabled = el.dataset.wasDisabled === "true";
      }
    });
    section.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function setProgress(section, stage, percent, text, state) {
    var box = part(section, "[data-progress]");
    if (!box) { return; }
    var pct = Math.max(0, Math.min(100, Math.round(percent || 0)));
    var bar = box.querySelector("[role=progressbar]");
    box.hidden = false;
    box.dataset.state = state || "running";
    bar.setAttribute("aria-valuenow", String(pct));
    bar.setAttribute("aria-valuetext", (stage || t("queued")) + ", " + pct + "%");
    // CSSOM, not a style attribute: allowed by the strict style-src CSP.
    box.querySelector("[data-progress-bar]").style.width = pct + "%";
    box.querySelector("[data-progress-text]").textContent = text;
  }

  function postJSON(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": csrfToken()
      },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { ok: response.ok, status: response.status, data: data };
      });
    });
  }

  function detail(data) {
    if (!data) { return ""; }
    if (typeof data.detail === "string") { return data.detail; }
    return Object.keys(data).map(function (k) {
      var v = data[k];
      return k + ": " + (Array.isArray(v) ? v.join(" ") : String(v));
    }).join("; ");
  }

  function errorText(result) {
    var why = detail(result.data);
    var inParens = why ? " (" + why + ")" : "";
    if (result.status === 409) { return t("conflict", { why: inParens }); }
    if (result.status === 503) { return t("unavailable", { why: inParens }); }
    if (result.status === 403) { return t("forbidden", { why: why || t("forbiddenDefault") }); }
    if (result.status === 400) { return t("refused", { why: why || t("refusedDefault") }); }
    if (why) { return t("failedWhy", { status: result.status, why: why }); }
    return t("failed", { status: result.status });
  }

  function reloadSoon(section, message) {
    try { window.sessionStorage.setItem(FLASH_KEY + section.dataset.kind, message); } catch (e) { /* private mode */ }
    window.setTimeout(function () { window.location.reload(); }, RELOAD_MS);
  }

  function outcomeText(kind, row) {
    var params = { kind: kind, version: row.version, status: word("Status", row.status), reason: row.status_reason_text || row.status_reason };
    return row.status_reason ? t("finishedReason", params) : t("finished", params);
  }

  /* Follow a training run until its version leaves "training". */
  function follow(section, run) {
    var kind = section.dataset.kind;
    var failures = 0;
    run.active = true;
    setBusy(section, true);

    function finish(row) {
      if (!run.active) { return; }
      run.active = false;
      var failed = row.status === "failed";
      var text = outcomeText(kind, row);
      setProgress(section, word("Stage", failed ? "failed" : "done"), 100, t("done", { text: text }), failed ? "failed" : "done");
      say(section, t("reloading", { text: text }), failed);
      reloadSoon(section, text);
    }
    run.finish = finish;

    function tick() {
      if (!run.active) { return; }
      fetch(section.dataset.versionsUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (rows) {
          failures = 0;
          var row = null;
          rows.forEach(function (r) {
            if (run.version ? r.version === run.version : r.status === "training") { row = row || r; }
          });
          if (row && row.status === "training") {
            run.version = row.version;
            var stage = word("Stage", row.stage);
            setProgress(section, stage, row.percent, t("progress", {
              kind: kind, version: row.version, stage: stage || t("queued"), percent: row.percent
            }));
          } else if (row && run.version) {
            finish(row);
          }
        })
        .catch(function () {
          failures += 1;
          if (failures >= MAX_POLL_FAILURES) {
            run.active = false;
            say(section, t("lost"), true);
            setBusy(section, false);
          }
        })
        .then(function () {
          if (run.active) { window.setTimeout(tick, POLL_MS); }
        });
    }
    tick();
  }

  function retrain(section, button) {
    var run = { version: null, active: false };
    say(section, t("starting"), false);
    setProgress(section, t("queued"), 0, t("queuedProgress", { kind: section.dataset.kind }));
    follow(section, run);
    postJSON(button.dataset.url, {}).then(function (result) {
      if (result.ok) {
        run.version = result.data.version;
        say(section, t("training", { kind: section.dataset.kind, version: result.data.version }), false);
        // With in-process tasks the run is already over when the POST returns.
        if (result.data.status && result.data.status !== "training") { run.finish(result.data); }
      } else if (result.status === 409 && result.data.version) {
        run.version = result.data.version;
        say(section, errorText(result), true);
      } else {
        run.active = false;
        part(section, "[data-progress]").hidden = true;
        say(section, errorText(result), true);
        setBusy(section, false);
      }
    }).catch(function () {
      run.active = false;
      part(section, "[data-progress]").hidden = true;
      say(section, t("notSent"), true);
      setBusy(section, false);
    });
  }

  function operate(section, button, body, verb) {
    setBusy(section, true);
    say(section, verb, false);
    postJSON(button.dataset.url, body).then(function (result) {
      if (result.ok) {
        var text = t("nowActive", { kind: section.dataset.kind, version: result.data.version });
        say(section, t("reloading", { text: text }), false);
        reloadSoon(section, text);
      } else {
        say(section, errorText(result), true);
        setBusy(section, false);
      }
    }).catch(function () {
      say(section, t("notSent"), true);
      setBusy(section, false);
    });
  }

  function wire(section) {
    var flash = null;
    try {
      flash = window.sessionStorage.getItem(FLASH_KEY + section.dataset.kind);
      window.sessionStorage.removeItem(FLASH_KEY + section.dataset.kind);
    } catch (e) { /* private mode */ }
    if (flash) { say(section, flash, false); }

    section.addEventListener("click", function (event) {
      var button = event.target.closest("[data-action]");
      if (!button || button.disabled) { return; }
      var action = button.dataset.action;
      if (action === "retrain") {
        retrain(section, button);
      } else if (action === "promote") {
        var select = part(section, "[data-promote-select]");
        var version = select ? parseInt(select.value, 10) : NaN;
        if (!version) { say(section, t("choose"), true); return; }
        operate(section, button, { version: version }, t("promoting", { version: version }));
      } else if (action === "rollback") {
        operate(section, button, {}, t("rollingBack"));
      }
    });

    var training = parseInt(section.dataset.trainingVersion || "", 10);
    if (training) { follow(section, { version: training, active: false }); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".model-section[data-kind]").forEach(wire);
    window.EduCharts.renderAll(window.EduCharts.readJSON("models-data"));
  });
})();
