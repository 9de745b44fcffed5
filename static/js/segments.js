/* segments page: draws the charts whose specs the view embedded as #segments-data. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    window.EduCharts.renderAll(window.EduCharts.readJSON("segments-data"));
  });
})();
