// The coordinator's map: markers built from the site list on the page (the list stays the
// source of truth and works without this script). Each marker carries its grade letter, so
// colour is never the only signal. Tiles only when a tile URL is configured; without one
// the markers sit on a plain background, which is enough to see where problems cluster.
(function () {
  "use strict";

  function start() {
    var holder = document.getElementById("site-map");
    if (!holder || typeof window.L === "undefined") {
      return;
    }
    var table = document.getElementById(holder.getAttribute("data-list"));
    if (!table) {
      return;
    }
    var rows = table.querySelectorAll("tbody tr[data-lat]");
    var points = [];
    holder.hidden = false;
    var map = window.L.map(holder, { zoomControl: true, attributionControl: false });
    var tiles = holder.getAttribute("data-tiles");
    if (tiles) {
      window.L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
    }
    rows.forEach(function (row) {
      var lat = parseFloat(row.getAttribute("data-lat"));
      var lng = parseFloat(row.getAttribute("data-lng"));
      if (isNaN(lat) || isNaN(lng)) {
        return;
      }
      var grade = row.getAttribute("data-grade");
      var letter = document.createElement("span");
      letter.className = "map-marker " + (grade ? "grade-" + grade.toLowerCase() : "grade-none");
      letter.textContent = grade || "–";
      var icon = window.L.divIcon({ html: letter, className: "", iconSize: [32, 32], iconAnchor: [16, 16] });
      var marker = window.L.marker([lat, lng], {
        icon: icon,
        title: row.getAttribute("data-name") + ": " + (grade || "–"),
        alt: row.getAttribute("data-name") + ": " + (grade || "–"),
        keyboard: true
      }).addTo(map);
      var link = document.createElement("a");
      link.href = row.getAttribute("data-href");
      link.textContent = row.getAttribute("data-name") + " (" + (grade || "–") + ")";
      marker.bindPopup(link);
      points.push([lat, lng]);
    });
    if (points.length) {
      map.fitBounds(points, { padding: [24, 24], maxZoom: 17 });
    } else {
      holder.hidden = true;
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
