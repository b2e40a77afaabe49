// The Map page's drawing, on Leaflet and Leaflet.markercluster (npm),
// bundled after them into dist/map/map.js by `cargo xtask dist` and loaded
// by the Map page only. The dashboard (wasm) calls
// window.meshscopeMap(element, {iata, packet, sighting, node}).
(function () {
  'use strict';
  var COLORS = { repeater: 'role-repeater', companion: 'role-companion', room: 'role-room', sensor: 'role-sensor' };

  function get(path) {
    return fetch(path).then(function (r) {
      return r.text().then(function (t) {
        var body = null;
        try { body = JSON.parse(t); } catch (e) { /* not JSON: said below */ }
        if (!r.ok) throw new Error(path + ': HTTP ' + r.status + ': ' + ((body && body.error) || r.statusText));
        if (body === null) throw new Error(path + ': not JSON');
        return body;
      });
    });
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function regionQuery(iata) {
    return iata ? '?iata=' + encodeURIComponent(iata) : '';
  }

  // Every located node, page by page (the server caps a page at 500).
  async function located(iata) {
    var nodes = [], cursor = null, building = false;
    for (var i = 0; i < 100; i++) {
      var q = '/api/nodes?located=true&limit=500' + (iata ? '&iata=' + encodeURIComponent(iata) : '') +
        (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
      var page = await get(q);
      nodes = nodes.concat(page.nodes);
      building = building || page.building;
      if (!page.cursor) break;
      cursor = page.cursor;
    }
    return { nodes: nodes, building: building };
  }

  function located_(n) {
    return n && n.lat != null && n.lon != null && !(n.lat === 0 && n.lon === 0);
  }

  window.meshscopeMap = async function (el, opts) {
    var status = document.getElementById('map-status');
    var say = function (text) { if (status) status.textContent = text; };
    try {
      var cfg = await get('/api/map');
      // maxZoom on the map itself: without tiles nothing else sets it.
      var map = L.map(el, { worldCopyJump: true, maxZoom: 19 }).setView([37.6, -122.1], 9);
      if (cfg.tiles) {
        L.tileLayer(cfg.tiles, { attribution: esc(cfg.attribution), maxZoom: 19 }).addTo(map);
      } else {
        map.attributionControl.addAttribution('no map tiles configured');
      }
      var got = await located(opts.iata);
      var cluster = L.markerClusterGroup({
        maxClusterRadius: 40, showCoverageOnHover: false, disableClusteringAtZoom: 15
      });
      var focus = null;
      var points = [];
      got.nodes.forEach(function (n) {
        var role = n.role || 'unknown';
        var m = L.marker([n.lat, n.lon], {
          title: n.name || n.publicKey.slice(0, 8),
          icon: L.divIcon({ className: 'node-marker ' + (COLORS[role] || 'role-other'), iconSize: [14, 14] })
        });
        m.bindPopup('<a class="map-node" href="/nodes/' + esc(n.publicKey) + regionQuery(opts.iata) + '">' +
          esc(n.name || '(no name)') + '</a><br><span class="muted">' + esc(role) + '</span>');
        cluster.addLayer(m);
        points.push([n.lat, n.lon]);
        if (opts.node && n.publicKey === opts.node) focus = n;
      });
      map.addLayer(cluster);
      var text = got.nodes.length + ' nodes with a location' + (opts.iata ? ' heard in ' + opts.iata : '') + '.';
      if (got.building) text += ' The node list is still being built; more will appear.';
      if (opts.packet) {
        var d = await get('/api/packets/' + encodeURIComponent(opts.packet));
        var o = d.observations[opts.sighting || 0];
        var route = [];
        (o ? o.resolvedPath : []).forEach(function (h) { if (located_(h.node)) route.push([h.node.lat, h.node.lon]); });
        if (o && located_(o.observerNode)) route.push([o.observerNode.lat, o.observerNode.lon]);
        if (route.length >= 2) {
          L.polyline(route, { className: 'map-route' }).addTo(map);
          map.fitBounds(route, { padding: [30, 30] });
          text += ' The route of sighting ' + ((opts.sighting || 0) + 1) + ' of packet ' + opts.packet + ' is drawn.';
        } else {
          text += ' Packet ' + opts.packet + ' has no route of two located points.';
        }
      } else if (focus) {
        map.setView([focus.lat, focus.lon], 16);
        text += ' Centred on ' + (focus.name || focus.publicKey.slice(0, 8)) + '.';
      } else if (opts.node) {
        text += ' Node ' + opts.node.slice(0, 8) + ' has no location on this map.';
        if (points.length) map.fitBounds(points, { padding: [30, 30], maxZoom: 12 });
      } else if (points.length) {
        map.fitBounds(points, { padding: [30, 30], maxZoom: 12 });
      }
      say(text);
      el.setAttribute('data-ready', 'true');
    } catch (e) {
      say('Could not draw the map: ' + ((e && e.message) || String(e)));
      if (window.console) console.error(e);
      el.setAttribute('data-ready', 'error');
    }
  };
}());
