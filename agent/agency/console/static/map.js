// The map page: Leaflet markers for the places listed on the page (li[data-lat][data-lon]).
// Labels are untrusted text from the sites: popups are DOM nodes filled with textContent.
(function () {
  "use strict";

  var el = document.getElementById("map");
  if (!el || typeof window.L === "undefined") {
    return;
  }
  var L = window.L;
  var map = L.map(el);
  var tileUrl = el.dataset.tileUrl;
  if (tileUrl) {
    // Leaflet writes the attribution as HTML: give it text with its markup escaped.
    var attribution = (el.dataset.tileAttribution || "").replace(/[&<>"']/g, function (c) {
      return "&#" + c.charCodeAt(0) + ";";
    });
    L.tileLayer(tileUrl, { attribution: attribution, maxZoom: 19 }).addTo(map);
  }

  function popup(li) {
    var box = document.createElement("div");
    var link = document.createElement("a");
    link.href = li.dataset.href || "#";
    link.textContent = li.dataset.label || "";
    box.appendChild(link);
    return box;
  }

  var points = [];
  function addMarkers(selector, className, radius) {
    var items = document.querySelectorAll(selector);
    for (var i = 0; i < items.length; i += 1) {
      var li = items[i];
      var lat = Number(li.dataset.lat);
      var lon = Number(li.dataset.lon);
      if (!isFinite(lat) || !isFinite(lon)) {
        continue;
      }
      L.circleMarker([lat, lon], { radius: radius, className: className, weight: 2, fillOpacity: 0.6 })
        .bindPopup(popup(li))
        .addTo(map);
      points.push([lat, lon]);
    }
  }
  addMarkers("#map-sites li.map-site[data-lat]", "marker-site", 9);
  addMarkers("#map-incidents li.map-incident[data-lat]", "marker-incident", 6);

  if (points.length) {
    map.fitBounds(points, { padding: [40, 40], maxZoom: 16 });
  } else {
    map.setView([0, 0], 2);
  }
})();
