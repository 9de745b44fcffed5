/* learner page: draws the charts whose specs the view embedded as #learner-data. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    window.EduCharts.renderAll(window.EduCharts.readJSON("learner-data"));
  });
})();
