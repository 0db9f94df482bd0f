// mediaflow dashboard: keeps the overview live by polling overview.json, and asks
// before acting on dead letters. No inline script anywhere (the CSP forbids it);
// values go into the page with textContent only, never as HTML.
"use strict";

(function () {
  var POLL_MS = 5000;
  var STALE_MS = 15000;

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value === null || value === undefined ? "-" : String(value);
  }

  function perSecond(rate) {
    return rate === null || rate === undefined ? "-" : rate.toFixed(1);
  }

  function fillRows(tableId, rows, cells) {
    var body = document.querySelector("#" + tableId + " tbody");
    if (!body) return;
    body.replaceChildren();
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      cells(row).forEach(function (value) {
        var td = document.createElement("td");
        td.textContent = value === null || value === undefined ? "-" : String(value);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function render(data) {
    text("taken-at", data.at);
    text("broker", data.broker);
    text("s3", data.s3);
    text("dead-letters", data.dead_letters);
    var lagging = data.under_replicated || [];
    document.getElementById("under-replicated").hidden = lagging.length === 0;
    text("under-replicated-list", lagging.join(", "));
    var projection = data.projection || {};
    text("not-applied", projection.events_not_applied);
    text("oldest", projection.oldest_in_flight_age_s);
    fillRows("by-status", Object.entries(projection.by_status || {}), function (pair) {
      return pair;
    });
    fillRows("stages", data.stages || [], function (s) {
      return [s.group, perSecond(s.rate), s.in_flight, s.oldest_in_flight_age_s];
    });
    fillRows("groups", data.groups || [], function (g) {
      return [g.group, g.topic, g.partition, g.committed, g.end, g.lag, perSecond(g.rate)];
    });
    var client = data.client_view;
    if (client) {
      text("client-pending", client.pending);
      text("client-oldest", client.oldest_pending_age_s);
      text("client-dead-letters", client.open_dead_letters);
    }
    drawChart(data.activity);
  }

  var SVG = "http://www.w3.org/2000/svg";

  function drawChart(activity) {
    var svg = document.getElementById("activity");
    if (!svg || !activity) return;
    svg.replaceChildren();
    activity.bars.forEach(function (b) {
      var base = activity.height;
      [["stored", b.stored], ["failed", b.failed], ["dead-lettered", b.dead_lettered]].forEach(
        function (part) {
          base -= part[1];
          var rect = document.createElementNS(SVG, "rect");
          rect.setAttribute("class", part[0]);
          rect.setAttribute("x", String(b.x));
          rect.setAttribute("width", "0.8");
          rect.setAttribute("y", String(base));
          rect.setAttribute("height", String(part[1]));
          svg.appendChild(rect);
        }
      );
    });
    text("tallest", activity.tallest);
    text("hour-stored", activity.last_hour.stored);
    text("hour-failed", activity.last_hour.failed);
    text("hour-dead-lettered", activity.last_hour.dead_lettered);
  }

  function live(freshness) {
    var source = freshness.getAttribute("data-source");
    var stale = document.getElementById("stale");
    var lastOk = Date.now();
    function check() {
      var late = Date.now() - lastOk > STALE_MS;
      stale.hidden = !late;
      freshness.classList.toggle("is-stale", late);
    }
    function poll() {
      fetch(source, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) {
          if (response.redirected || !response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (data) {
          if (data.error) throw new Error(data.error);
          render(data);
          lastOk = Date.now();
          freshness.setAttribute("data-updated", String(lastOk));
        })
        .catch(function () { /* the stale mark says it */ })
        .then(check);
    }
    setInterval(poll, POLL_MS);
    setInterval(check, 1000);
  }

  var freshness = document.getElementById("freshness");
  if (freshness) live(freshness);
})();
