// The live queue: follows /events (server-sent events) and keeps the table in step with the store.
// Every value comes from a site and is untrusted: it goes into the page through textContent and
// dataset only, never through innerHTML. Rows are built exactly like templates/macros.html builds them.
(function () {
  "use strict";

  var table = document.querySelector("table.queue");
  if (!table || !window.EventSource) {
    return;
  }
  var tbody = table.tBodies[0];
  var exercise = table.dataset.exercise === "true";
  var liveStatus = document.getElementById("live-status");
  var count = document.getElementById("queue-count");
  var empty = document.getElementById("queue-empty");
  var DONE = ["dismissed", "closed"];
  var SEVERITIES = ["Extreme", "Severe", "Moderate", "Minor"];

  function utc(seconds) {
    return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19);
  }

  function iso(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 19) + "Z";
  }

  function cell(name, child) {
    var td = document.createElement("td");
    td.className = name;
    if (typeof child === "string") {
      td.textContent = child;
    } else if (child) {
      td.appendChild(child);
    }
    return td;
  }

  function span(className, text) {
    var s = document.createElement("span");
    s.className = className;
    s.textContent = text;
    return s;
  }

  function buildRow(inc) {
    var tr = document.createElement("tr");
    tr.className = "incident" + (inc.acknowledged ? "" : " unacknowledged");
    tr.dataset.siteId = inc.site_id;
    tr.dataset.incidentId = inc.incident_id;
    tr.dataset.state = inc.state;
    tr.dataset.acknowledged = inc.acknowledged ? "true" : "false";
    tr.dataset.severityRank = String(inc.severity_rank);
    tr.dataset.validationLevel = String(inc.validation_level);
    tr.dataset.updated = String(inc.updated);
    tr.dataset.change = String(inc.change);

    var time = document.createElement("time");
    time.dateTime = iso(inc.updated);
    time.textContent = utc(inc.updated);
    var link = document.createElement("a");
    link.className = "incident-link";
    link.href = inc.url;
    link.textContent = inc.headline || inc.event || inc.incident_id;
    var where = (inc.rule || "") + (inc.zone || inc.line ? " / " + (inc.zone || inc.line) : "");
    var severity = SEVERITIES.indexOf(inc.severity) >= 0 ? inc.severity.toLowerCase() : "unknown";
    var state = /^[a-z_]+$/.test(inc.state) ? inc.state : "unknown";

    tr.appendChild(cell("col-updated", time));
    tr.appendChild(cell("col-site", inc.site_name || inc.site_id));
    tr.appendChild(cell("col-event", link));
    tr.appendChild(cell("col-where", where));
    tr.appendChild(cell("col-severity", span("severity severity-" + severity, inc.severity || "")));
    tr.appendChild(cell("col-level", String(inc.validation_level)));
    tr.appendChild(cell("col-state", span("state state-" + state, inc.state)));
    tr.appendChild(cell("col-count", String(inc.alert_count)));
    return tr;
  }

  // The server's queue order: unacknowledged first, then severity, validation level, newest.
  function before(a, b) {
    var ackA = a.dataset.acknowledged === "true" ? 1 : 0;
    var ackB = b.dataset.acknowledged === "true" ? 1 : 0;
    if (ackA !== ackB) {
      return ackA < ackB;
    }
    var keys = ["severityRank", "validationLevel", "updated"];
    for (var i = 0; i < keys.length; i += 1) {
      var x = Number(a.dataset[keys[i]]);
      var y = Number(b.dataset[keys[i]]);
      if (x !== y) {
        return x > y;
      }
    }
    return false;
  }

  function findRow(siteId, incidentId) {
    // Compared in script, not through a CSS selector built from untrusted ids.
    var rows = tbody.rows;
    for (var i = 0; i < rows.length; i += 1) {
      if (rows[i].dataset.siteId === siteId && rows[i].dataset.incidentId === incidentId) {
        return rows[i];
      }
    }
    return null;
  }

  function place(tr) {
    var rows = tbody.rows;
    for (var i = 0; i < rows.length; i += 1) {
      if (before(tr, rows[i])) {
        tbody.insertBefore(tr, rows[i]);
        return;
      }
    }
    tbody.appendChild(tr);
  }

  function refreshCount() {
    var n = tbody.rows.length;
    if (count) {
      count.textContent = String(n);
    }
    if (empty) {
      empty.hidden = n > 0;
    }
  }

  function apply(inc) {
    var existing = findRow(inc.site_id, inc.incident_id);
    if (existing) {
      existing.remove();
    }
    if (inc.exercise !== exercise || DONE.indexOf(inc.state) >= 0) {
      refreshCount();
      return;
    }
    var tr = buildRow(inc);
    if (!inc.acknowledged) {
      tr.classList.add("incident-new");
    }
    place(tr);
    refreshCount();
  }

  function setStatus(state, text) {
    if (liveStatus) {
      liveStatus.dataset.state = state;
      liveStatus.textContent = text;
    }
  }

  var url = table.dataset.eventsUrl + "&after=" + encodeURIComponent(table.dataset.after || "0");
  var source = new EventSource(url);
  source.addEventListener("open", function () {
    setStatus("live", "Live updates: on");
  });
  source.addEventListener("error", function () {
    setStatus("reconnecting", "Live updates: reconnecting…");
  });
  source.addEventListener("incident", function (event) {
    var inc;
    try {
      inc = JSON.parse(event.data);
    } catch (err) {
      return;
    }
    if (inc && typeof inc.site_id === "string" && typeof inc.incident_id === "string") {
      apply(inc);
    }
  });
})();
