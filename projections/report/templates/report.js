// Interaction only: hover highlights a case everywhere, headings sort tables, buttons
// toggle runs. The report reads the same without it. No data lives in this script.
(function () {
  "use strict";
  var lit = [];
  function clear() {
    for (var i = 0; i < lit.length; i++) lit[i].classList.remove("hl");
    lit = [];
  }
  document.addEventListener("mouseover", function (ev) {
    var el = ev.target.closest ? ev.target.closest("[data-case]") : null;
    clear();
    if (!el) return;
    var sel = '[data-case="' + CSS.escape(el.getAttribute("data-case")) + '"]';
    var all = document.querySelectorAll(sel);
    for (var i = 0; i < all.length; i++) {
      all[i].classList.add("hl");
      lit.push(all[i]);
    }
  });
  function cellValue(row, i) {
    var c = row.cells[i];
    return c ? c.textContent.trim() : "";
  }
  function sortBy(table, i, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = rows.every(function (r) {
      var v = cellValue(r, i).replace(/^[^0-9+\-.]+/, "");
      return v === "" || v === "-" || !isNaN(parseFloat(v));
    });
    var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
    th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
    rows.sort(function (a, b) {
      var x = cellValue(a, i), y = cellValue(b, i);
      if (numeric) {
        var fx = parseFloat(x.replace(/^[^0-9+\-.]+/, "")), fy = parseFloat(y.replace(/^[^0-9+\-.]+/, ""));
        if (isNaN(fx)) fx = Infinity;
        if (isNaN(fy)) fy = Infinity;
        if (fx !== fy) return dir * (fx < fy ? -1 : 1);
        return 0;
      }
      return dir * (x < y ? -1 : x > y ? 1 : 0);
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    body.appendChild(frag);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var ths = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(ths, function (th, i) {
      th.addEventListener("click", function () { sortBy(table, i, th); });
    });
  });
  document.querySelectorAll("button.run-toggle").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var fig = btn.closest("figure");
      var run = btn.getAttribute("data-run");
      var off = btn.classList.toggle("off");
      fig.querySelectorAll('g.run[data-run="' + CSS.escape(run) + '"]').forEach(function (g) {
        g.classList.toggle("off", off);
      });
    });
  });
})();
