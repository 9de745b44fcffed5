/* course page: draws the charts whose specs the view embedded as #course-data. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    window.EduCharts.renderAll(window.EduCharts.readJSON("course-data"));
  });
})();
