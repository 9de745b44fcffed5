/* data quality page: draws the charts whose specs the view embedded as #quality-data. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    window.EduCharts.renderAll(window.EduCharts.readJSON("quality-data"));
  });
})();
