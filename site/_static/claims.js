// The claims dashboard (index.html): show only the rows whose paper and verdict class match the two
// selects ("" = all), and say how many are shown. Plain JavaScript, no library: the site loads nothing
// from another host.
(function () {
  "use strict";
  function apply() {
    var paper = document.getElementById("filter-paper").value;
    var verdict = document.getElementById("filter-verdict").value;
    var rows = document.querySelectorAll("#claims tbody tr");
    var shown = 0;
    rows.forEach(function (row) {
      var keep = (!paper || row.dataset.paper === paper) &&
                 (!verdict || row.dataset.verdictClass === verdict);
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    document.getElementById("claims-count").textContent =
      shown + " of " + rows.length + " claims";
  }
  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("claims");
    if (!table) { return; }   // every page loads this file; only the dashboard has the table
    ["filter-paper", "filter-verdict"].forEach(function (id) {
      document.getElementById(id).addEventListener("change", apply);
    });
    apply();   // a browser that restored the selects' values on reload filters at once
  });
})();
