// iotcop fleet dashboard: live progress of running scans.
//
// Every page works without this script; it only spares reloading them.
// On a scan page (#scan) it asks GET /api/v1/scans/{id} every second,
// updates the counters and the progress bar, and reloads the findings
// table (#scan-findings) from the page itself whenever a shard finished;
// it stops when the scan is done or failed. On the scans list (#scans) it
// updates the rows of unfinished scans the same way. It sends nothing but
// GET requests of this origin, and inserts only HTML the server rendered.
(function () {
  "use strict";

  var POLL_MS = 1000;
  var RETRY_MS = 5000;

  function finished(status) {
    return status === "done" || status === "failed";
  }

  function percent(done, total) {
    return total > 0 ? Math.min(100, Math.floor((done * 100) / total)) : 0;
  }

  // StopError ends polling: the session ended or the scan is gone.
  function StopError(message) {
    this.message = message;
  }

  function get(url, accept) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: accept } }).then(function (r) {
      if (r.status === 401 || r.status === 403 || r.status === 404) {
        throw new StopError(url + ": HTTP " + r.status);
      }
      if (!r.ok) {
        throw new Error(url + ": HTTP " + r.status);
      }
      return accept === "application/json" ? r.json() : r.text();
    });
  }

  function setText(el, value) {
    if (el) {
      el.textContent = String(value);
    }
  }

  function byId(id) {
    return document.getElementById(id);
  }

  // "2026-11-26T10:00:00.123Z" as the server writes times: "2026-11-26 10:00 UTC".
  function formatTime(iso) {
    return iso ? iso.slice(0, 16).replace("T", " ") + " UTC" : "";
  }

  function setBar(bar, done, total) {
    if (bar) {
      bar.max = Math.max(total, 1);
      bar.value = done;
      bar.textContent = percent(done, total) + "%";
    }
  }

  function followScan(box) {
    var id = box.getAttribute("data-scan-id");
    var shardsShown = Number(box.getAttribute("data-shards-done"));

    function reloadFindings() {
      return get(window.location.pathname, "text/html").then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("scan-findings");
        var old = byId("scan-findings");
        if (fresh && old) {
          old.replaceWith(document.adoptNode(fresh));
        }
      });
    }

    function show(sc) {
      box.setAttribute("data-status", sc.status);
      box.setAttribute("data-shards-done", String(sc.shards_done));
      var status = byId("scan-status");
      setText(status, sc.status);
      if (status) {
        status.className = "status-" + sc.status;
      }
      // Hosts move inside running shards; a firmware analysis has none.
      var done = sc.hosts_total > 0 ? sc.hosts_done : sc.shards_done;
      var total = sc.hosts_total > 0 ? sc.hosts_total : sc.shards_total;
      setBar(byId("scan-progress"), done, total);
      setText(byId("scan-percent"), percent(done, total) + "%");
      setText(byId("scan-shards-done"), sc.shards_done);
      setText(byId("scan-shards-total"), sc.shards_total);
      setText(byId("scan-hosts-done"), sc.hosts_done);
      setText(byId("scan-hosts-total"), sc.hosts_total);
      setText(byId("scan-devices"), sc.devices);
      setText(byId("scan-findings-count"), sc.findings);
      setText(byId("scan-finished"), formatTime(sc.finished_at));
      var err = byId("scan-error");
      if (err) {
        setText(err, sc.error || "");
        err.hidden = !sc.error;
      }
    }

    function tick() {
      get("/api/v1/scans/" + encodeURIComponent(id), "application/json")
        .then(function (sc) {
          show(sc);
          var done = finished(sc.status);
          var changed = sc.shards_done !== shardsShown;
          shardsShown = sc.shards_done;
          return (changed || done ? reloadFindings() : Promise.resolve()).then(function () {
            if (done) {
              box.setAttribute("data-live", "finished");
              var note = byId("scan-live-note");
              if (note) {
                note.hidden = true;
              }
              return;
            }
            window.setTimeout(tick, POLL_MS);
          });
        })
        .catch(function (err) {
          if (err instanceof StopError) {
            box.setAttribute("data-live", "stopped");
            return;
          }
          // A server restarting or a lost connection: try again later.
          window.setTimeout(tick, RETRY_MS);
        });
    }

    box.setAttribute("data-live", "polling");
    tick();
  }

  function followList(table) {
    function pending() {
      return Array.prototype.filter.call(table.querySelectorAll("tr.scan-row"), function (row) {
        return !finished(row.getAttribute("data-status"));
      });
    }

    function tick() {
      if (pending().length === 0) {
        table.setAttribute("data-live", "finished");
        return;
      }
      get("/api/v1/scans?limit=1000", "application/json")
        .then(function (answer) {
          answer.scans.forEach(function (sc) {
            var row = byId("scan-row-" + sc.id);
            if (!row) {
              return;
            }
            row.setAttribute("data-status", sc.status);
            var state = row.querySelector(".scan-state");
            setText(state, sc.status);
            if (state) {
              state.className = "scan-state status-" + sc.status;
            }
            setBar(row.querySelector(".scan-bar"), sc.shards_done, sc.shards_total);
            setText(row.querySelector(".scan-shards"), sc.shards_done + "/" + sc.shards_total);
            setText(row.querySelector(".scan-devices"), sc.devices);
            setText(row.querySelector(".scan-findings-count"), sc.findings);
          });
          window.setTimeout(tick, POLL_MS);
        })
        .catch(function (err) {
          if (err instanceof StopError) {
            table.setAttribute("data-live", "stopped");
            return;
          }
          window.setTimeout(tick, RETRY_MS);
        });
    }

    table.setAttribute("data-live", "polling");
    tick();
  }

  function start() {
    var box = byId("scan");
    if (box && box.hasAttribute("data-scan-id")) {
      if (finished(box.getAttribute("data-status"))) {
        box.setAttribute("data-live", "finished");
      } else {
        followScan(box);
      }
    }
    var list = byId("scans");
    if (list) {
      followList(list);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
