// The coordinator's map: markers built from the site list on the page (the list stays the
// source of truth and works without this script). Each marker carries its grade letter, so
// colour is never the only signal. Street tiles only when the server names a tile server
// (KERBSIDE_MAP_TILES); without one the markers sit on a plain background, which is enough
// to see where problems cluster.
//
// Sites closer together than a marker's width would hide one another (two sites on one
// corner, a row of shops given one point), so at every zoom such markers are spread in a
// ring around their shared spot (a spiral when there are many), each with a thin line to
// where it really is. Every marker stays a button that a mouse, a finger or the keyboard
// (Tab, then Enter) can open.
(function () {
  "use strict";

  // A marker is 32 px wide: centres closer than this overlap, and spread ones sit this far apart.
  var SPACING = 36;
  // Up to this many go round one ring; more follow a spiral, which keeps large groups compact.
  var RING_MOST = 9;

  function ringOffsets(count) {
    var radius = Math.max(SPACING * 0.75, SPACING / (2 * Math.sin(Math.PI / count)));
    var offsets = [];
    for (var i = 0; i < count; i += 1) {
      var angle = (2 * Math.PI * i) / count - Math.PI / 2;
      offsets.push([radius * Math.cos(angle), radius * Math.sin(angle)]);
    }
    return offsets;
  }

  function spiralOffsets(count) {
    // An Archimedean spiral whose turns are SPACING apart, stepping SPACING along it.
    var offsets = [];
    var angle = 0;
    for (var i = 0; i < count; i += 1) {
      var radius = SPACING + (SPACING / (2 * Math.PI)) * angle;
      offsets.push([radius * Math.cos(angle - Math.PI / 2), radius * Math.sin(angle - Math.PI / 2)]);
      angle += SPACING / radius;
    }
    return offsets;
  }

  // Groups of sites whose markers would overlap at the map's current zoom, in list order.
  function overlapping(map, sites) {
    var groups = [];
    sites.forEach(function (site) {
      var point = map.latLngToLayerPoint(site.where);
      for (var i = 0; i < groups.length; i += 1) {
        if (groups[i].centre.distanceTo(point) < SPACING) {
          groups[i].members.push(site);
          return;
        }
      }
      groups.push({ centre: point, members: [site] });
    });
    return groups;
  }

  function spread(map, sites, legs) {
    var L = window.L;
    legs.clearLayers();
    overlapping(map, sites).forEach(function (group) {
      var count = group.members.length;
      if (count === 1) {
        group.members[0].marker.setLatLng(group.members[0].where);
        return;
      }
      var offsets = count <= RING_MOST ? ringOffsets(count) : spiralOffsets(count);
      group.members.forEach(function (site, i) {
        var shown = map.layerPointToLatLng(group.centre.add(L.point(offsets[i][0], offsets[i][1])));
        site.marker.setLatLng(shown);
        legs.addLayer(L.polyline([site.where, shown], { color: "#1f2933", weight: 1.5, opacity: 0.8, interactive: false }));
      });
      legs.addLayer(L.circleMarker(map.layerPointToLatLng(group.centre),
                                   { color: "#1f2933", weight: 1, fillOpacity: 0.9, radius: 4, interactive: false }));
    });
  }

  // The attribution is the server's plain text; Leaflet writes it as HTML, so it is escaped here.
  function asText(words) {
    return words.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }

  function start() {
    var L = window.L;
    var holder = document.getElementById("site-map");
    if (!holder || typeof L === "undefined") {
      return;
    }
    var table = document.getElementById(holder.getAttribute("data-list"));
    if (!table) {
      return;
    }
    var rows = table.querySelectorAll("tbody tr[data-lat]");
    var tiles = holder.getAttribute("data-tiles");
    holder.hidden = false;
    var map = L.map(holder, { zoomControl: true, attributionControl: Boolean(tiles) });
    if (tiles) {
      map.attributionControl.setPrefix(false);
      L.tileLayer(tiles, { maxZoom: 19, attribution: asText(holder.getAttribute("data-attribution") || "") })
        .addTo(map);
    }
    var legs = L.layerGroup().addTo(map);
    var sites = [];
    rows.forEach(function (row) {
      var lat = parseFloat(row.getAttribute("data-lat"));
      var lng = parseFloat(row.getAttribute("data-lng"));
      if (isNaN(lat) || isNaN(lng)) {
        return;
      }
      var grade = row.getAttribute("data-grade");
      var name = row.getAttribute("data-name") + ": " + (grade || "–");
      var letter = document.createElement("span");
      letter.className = "map-marker " + (grade ? "grade-" + grade.toLowerCase() : "grade-none");
      letter.textContent = grade || "–";
      var icon = L.divIcon({ html: letter, className: "", iconSize: [32, 32], iconAnchor: [16, 16] });
      var marker = L.marker([lat, lng], { icon: icon, title: name, alt: name, keyboard: true }).addTo(map);
      var link = document.createElement("a");
      link.href = row.getAttribute("data-href");
      link.textContent = row.getAttribute("data-name") + " (" + (grade || "–") + ")";
      marker.bindPopup(link);
      sites.push({ where: L.latLng(lat, lng), marker: marker });
    });
    if (!sites.length) {
      holder.hidden = true;
      return;
    }
    map.on("zoomend", function () {
      spread(map, sites, legs);
    });
    map.fitBounds(sites.map(function (site) { return site.where; }), { padding: [24, 24], maxZoom: 17 });
    spread(map, sites, legs);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
