/* The resident portal's small script. Every page works without it; it only makes them nicer:
   no double submits, the error summary focused, the class suggested as you type, the map tap and
   the browser's location, photos checked and shrunk before a slow upload, operator replies live. */
(function () {
  "use strict";
  var doc = document;
  doc.documentElement.className += " js";
  function $(id) { return doc.getElementById(id); }

  // One submit per form: the button waits and says so (the server dedupes anyway).
  Array.prototype.forEach.call(doc.querySelectorAll("form[data-busy]"), function (form) {
    var button = form.querySelector("button[type=submit]");
    if (!button) return;
    var label = button.textContent;
    form.addEventListener("submit", function () {
      if (button.disabled) return;
      setTimeout(function () { button.disabled = true; button.textContent = form.getAttribute("data-busy"); }, 0);
    });
    // Back to a page kept in memory: the button works again.
    window.addEventListener("pageshow", function () { button.disabled = false; button.textContent = label; });
  });

  var summary = $("error-summary");
  if (summary) summary.focus();

  // -- report: the class suggestion ---------------------------------------------------------------
  var description = $("description"), select = $("class"), suggestion = $("suggestion");
  if (description && select && select.getAttribute("data-suggest")) {
    var chosenByHand = select.value !== "", timer = null, asked = "";
    select.addEventListener("change", function () { chosenByHand = select.value !== ""; });
    description.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var text = description.value.trim();
        if (text.length < 2 || text === asked || !window.fetch) return;
        asked = text;
        fetch(select.getAttribute("data-suggest") + "&text=" + encodeURIComponent(text), {credentials: "same-origin"})
          .then(function (r) { return r.json(); })
          .then(function (found) {
            if (text !== asked) return;
            suggestion.textContent = "";
            if (!found.code) return;
            suggestion.appendChild(doc.createTextNode(suggestion.getAttribute("data-text")));
            var strong = doc.createElement("strong");
            strong.textContent = found.name;
            suggestion.appendChild(strong);
            suggestion.appendChild(doc.createTextNode("（" + found.major + "）"));
            if (!chosenByHand) select.value = found.code;
          })
          .catch(function () {});
      }, 450);
    });
  }

  // -- report: the grid map and the browser's location ----------------------------------------------
  var map = $("gridmap");
  if (map) {
    var west = +map.getAttribute("data-west"), north = +map.getAttribute("data-north");
    var kx = +map.getAttribute("data-kx"), ky = +map.getAttribute("data-ky");
    var pin = $("pin"), lat = $("lat"), lon = $("lon"), status = $("place-status");
    var cells = map.querySelectorAll("polygon"), places = map.querySelectorAll("circle.place");
    var zoom = $("zoom"), wrap = $("map-wrap");
    zoom.addEventListener("click", function () {
      var on = wrap.classList.toggle("zoomed");
      zoom.setAttribute("aria-pressed", on ? "true" : "false");
    });

    var cellAt = function (x, y) {
      for (var i = 0; i < cells.length; i++) {
        var c = cells[i];
        if (c.isPointInFill) {
          var p = map.createSVGPoint(); p.x = x; p.y = y;
          if (c.isPointInFill(p)) return c;
        }
      }
      return null;
    };
    var choose = function (la, lo, announce) {
      var x = (lo - west) * kx, y = (north - la) * ky;
      var cell = cellAt(x, y);
      for (var i = 0; i < cells.length; i++) cells[i].classList.remove("on");
      if (!cell) return false;
      cell.classList.add("on");
      pin.setAttribute("cx", x.toFixed(1)); pin.setAttribute("cy", y.toFixed(1));
      lat.value = la.toFixed(6); lon.value = lo.toFixed(6);
      var name = cell.querySelector("title"), near = null, best = 150 * 150;
      for (var j = 0; j < places.length; j++) {
        var dx = places[j].cx.baseVal.value - x, dy = places[j].cy.baseVal.value - y;
        if (dx * dx + dy * dy < best) { best = dx * dx + dy * dy; near = places[j].getAttribute("data-name"); }
      }
      if (announce !== false) status.textContent = map.getAttribute("data-chosen") +
        (name ? name.textContent : la.toFixed(5) + ", " + lo.toFixed(5)) + (near ? map.getAttribute("data-near") + near : "");
      return true;
    };
    map.addEventListener("click", function (event) {
      var point = map.createSVGPoint();
      point.x = event.clientX; point.y = event.clientY;
      var p = point.matrixTransform(map.getScreenCTM().inverse());
      choose(north - p.y / ky, west + p.x / kx);
    });
    if (lat.value && lon.value) choose(+lat.value, +lon.value);

    var locate = $("locate");
    if (locate) {
      if (!navigator.geolocation) locate.hidden = true;
      locate.addEventListener("click", function () {
        status.textContent = locate.getAttribute("data-wait");
        navigator.geolocation.getCurrentPosition(function (position) {
          if (!choose(position.coords.latitude, position.coords.longitude)) status.textContent = locate.getAttribute("data-outside");
        }, function () {
          status.textContent = locate.getAttribute("data-fail");
        }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
      });
    }
  }

  // -- report: photos checked, and large ones shrunk before a slow upload --------------------------
  var photo = $("photo");
  if (photo && window.DataTransfer && window.FileReader) {
    var photoStatus = $("photo-status");
    var max = +photo.getAttribute("data-max"), maxBytes = +photo.getAttribute("data-max-bytes");
    var kinds = {"image/jpeg": 1, "image/png": 1, "image/webp": 1};
    var shrink = function (file) {
      return new Promise(function (resolve) {
        if (file.size < 900 * 1024 || !window.createImageBitmap) return resolve(file);
        createImageBitmap(file).then(function (bitmap) {
          var scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
          var canvas = doc.createElement("canvas");
          canvas.width = Math.round(bitmap.width * scale); canvas.height = Math.round(bitmap.height * scale);
          canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
          canvas.toBlob(function (blob) {
            if (!blob || blob.size >= file.size) return resolve(file);
            resolve(new File([blob], file.name.replace(/\.\w+$/, "") + ".jpg", {type: "image/jpeg"}));
          }, "image/jpeg", 0.82);
        }).catch(function () { resolve(file); });
      });
    };
    var busy = false;
    photo.addEventListener("change", function () {
      if (busy) return;
      var files = Array.prototype.slice.call(photo.files);
      var problem = files.length > max ? "data-too-many"
        : files.some(function (f) { return !kinds[f.type]; }) ? "data-wrong" : null;
      if (problem) { photo.value = ""; photoStatus.textContent = photo.getAttribute(problem); return; }
      busy = true;
      Promise.all(files.map(shrink)).then(function (ready) {
        if (ready.some(function (f) { return f.size > maxBytes; })) {
          photo.value = ""; photoStatus.textContent = photo.getAttribute("data-too-big");
        } else {
          var transfer = new DataTransfer();
          ready.forEach(function (f) { transfer.items.add(f); });
          photo.files = transfer.files;
          var total = ready.reduce(function (n, f) { return n + f.size; }, 0);
          var size = total < 1048576 ? Math.max(1, Math.round(total / 1024)) + " KB" : (total / 1048576).toFixed(1) + " MB";
          photoStatus.textContent = ready.length ? photo.getAttribute("data-ready").replace("{n}", ready.length).replace("{size}", size) : "";
        }
        busy = false;
      });
    });
  }

  // -- talk: the operator's replies appear without a reload ------------------------------------------
  var thread = $("thread");
  if (thread && /waiting|assigned/.test(thread.getAttribute("data-status")) && window.fetch) {
    var poll = function () {
      fetch("/talk/messages", {credentials: "same-origin"}).then(function (r) { return r.text(); }).then(function (html) {
        var box = doc.createElement("div");
        box.innerHTML = html;
        var fresh = box.querySelector("#thread");
        if (fresh && fresh.getAttribute("data-last") !== thread.getAttribute("data-last")) {
          thread.parentNode.replaceChild(fresh, thread);
          thread = fresh;
        }
      }).catch(function () {}).then(function () { setTimeout(poll, 8000); });
    };
    setTimeout(poll, 8000);
  }
})();
