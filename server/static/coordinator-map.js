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

  // A marker is a 32 px square (drawn round): centres closer than its diagonal can put one
  // square over part of another, so overlapping means closer than that, and spread markers
  // sit that far apart, whatever the angle between them.
  var SPACING = 46;
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

  // Pushes apart any two markers still closer than SPACING (a ring may land on a neighbour),
  // a few rounds at most; a grid of SPACING-sized cells finds the neighbours without comparing
  // every pair, so a borough's hundreds of sites stay quick at every zoom.
  function relax(points) {
    for (var round = 0; round < 40; round += 1) {
      var cells = {};
      points.forEach(function (point, i) {
        var key = Math.floor(point.x / SPACING) + "," + Math.floor(point.y / SPACING);
        (cells[key] = cells[key] || []).push(i);
      });
      var moved = false;
      points.forEach(function (point, i) {
        var cx = Math.floor(point.x / SPACING);
        var cy = Math.floor(point.y / SPACING);
        for (var dx = -1; dx <= 1; dx += 1) {
          for (var dy = -1; dy <= 1; dy += 1) {
            (cells[(cx + dx) + "," + (cy + dy)] || []).forEach(function (j) {
              if (j <= i) {
                return;
              }
              var other = points[j];
              var gapX = other.x - point.x;
              var gapY = other.y - point.y;
              var distance = Math.sqrt(gapX * gapX + gapY * gapY);
              if (distance >= SPACING) {
                return;
              }
              if (distance < 0.01) {
                // The same spot: part them along a direction that differs for each pair.
                gapX = Math.cos(i + j);
                gapY = Math.sin(i + j);
                distance = 1;
              }
              var push = (SPACING - distance) / 2 + 0.5;
              point.x -= (gapX / distance) * push;
              point.y -= (gapY / distance) * push;
              other.x += (gapX / distance) * push;
              other.y += (gapY / distance) * push;
              moved = true;
            });
          }
        }
      });
      if (!moved) {
        return;
      }
    }
  }

  function spread(map, sites, legs) {
    var L = window.L;
    legs.clearLayers();
    var shown = [];
    var truly = [];
    overlapping(map, sites).forEach(function (group) {
      var count = group.members.length;
      var offsets = count === 1 ? [[0, 0]] : count <= RING_MOST ? ringOffsets(count) : spiralOffsets(count);
      group.members.forEach(function (site, i) {
        truly.push(map.latLngToLayerPoint(site.where));
        shown.push({ site: site, x: group.centre.x + offsets[i][0], y: group.centre.y + offsets[i][1] });
      });
    });
    relax(shown);
    var spots = {};
    shown.forEach(function (placed, i) {
      var at = L.point(placed.x, placed.y);
      placed.site.marker.setLatLng(map.layerPointToLatLng(at));
      if (at.distanceTo(truly[i]) < 2) {
        return;
      }
      // A thin line from where the marker is drawn to where the site is, and a dot there.
      legs.addLayer(L.polyline([placed.site.where, map.layerPointToLatLng(at)],
                               { color: "#1f2933", weight: 1.5, opacity: 0.8, interactive: false }));
      var spot = Math.round(truly[i].x) + "," + Math.round(truly[i].y);
      if (!spots[spot]) {
        spots[spot] = true;
        legs.addLayer(L.circleMarker(placed.site.where,
                                     { color: "#1f2933", weight: 1, fillOpacity: 0.9, radius: 3, interactive: false }));
      }
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
    // Someone who asked for less motion gets a map that jumps to its new zoom instead of gliding.
    var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var map = L.map(holder, {
      zoomControl: true, attributionControl: Boolean(tiles),
      zoomAnimation: !still, fadeAnimation: !still, markerZoomAnimation: !still,
    });
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
