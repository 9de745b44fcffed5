/* overview page: draws the charts whose specs the view embedded as #overview-data. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    window.EduCharts.renderAll(window.EduCharts.readJSON("overview-data"));
  });
})();
