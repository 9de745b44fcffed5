/* Shared chart rendering for the dashboards.
 *
 * Pages embed their chart specs with Django's json_script (no inline script,
 * so a strict Content-Security-Policy works) and call EduCharts.renderAll.
 * A spec is {id, type, labels, datasets, options}; `type` is a Chart.js type
 * or "heatmap" (week x weekday grid drawn as square scatter points, since
 * Chart.js has no matrix chart without a plugin).
 */
(function () {
  "use strict";

  // Okabe-Ito: distinguishable with the common colour-vision deficiencies.
  var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8B7D00", "#333333"];

  function readJSON(id) {
    var el = document.getElementById(id);
    if (!el) { return {}; }
    try { return JSON.parse(el.textContent); } catch (e) { return {}; }
  }

  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }

  function styleDatasets(spec) {
    return spec.datasets.map(function (ds, i) {
      // colorIndex pins a colour to a thing (a segment keeps its colour when
      // another segment is not drawn); otherwise colours follow dataset order.
      var index = typeof ds.colorIndex === "number" ? ds.colorIndex : i;
      var color = PALETTE[index % PALETTE.length];
      var line = (ds.type || spec.type) === "line";
      var out = Object.assign({
        borderColor: color,
        backgroundColor: line ? alpha(color, 0.15) : alpha(color, 0.8),
        borderWidth: line ? 2 : 1,
        pointRadius: line ? 0 : 3,
        pointHoverRadius: 4,
        spanGaps: false, // a suppressed (null) value is a visible gap, not a line across it
        tension: 0.2
      }, ds);
      if (spec.type === "scatter") {
        out.pointRadius = 3;
        out.backgroundColor = alpha(color, 0.6);
      }
      return out;
    });
  }

  function axisTitle(text) {
    return text ? { display: true, text: text } : { display: false };
  }

  function baseOptions(spec) {
    var o = spec.options || {};
    var horizontal = o.indexAxis === "y";
    var valueAxis = horizontal ? "x" : "y";
    var scales = {};
    scales[valueAxis] = { beginAtZero: true, title: axisTitle(o.yTitle) };
    scales[horizontal ? "y" : "x"] = { ticks: { autoSkip: true, maxRotation: 0 } };
    if (o.yPercent) { scales.y.max = 100; scales.y.ticks = { callback: function (v) { return v + "%"; } }; }
    if (o.xPercent) { scales.x.ticks = { callback: function (v) { return v + "%"; } }; }
    if (o.secondAxis) {
      scales.y2 = { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: axisTitle(o.secondAxis) };
    }
    if (spec.type === "scatter") {
      scales = { x: { title: axisTitle(o.xTitle) }, y: { title: axisTitle(o.yTitle) } };
    }
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false, // instant and calm; also respects reduced-motion users
      indexAxis: o.indexAxis || "x",
      interaction: { mode: spec.type === "scatter" ? "nearest" : "index", intersect: spec.type === "scatter" },
      plugins: { legend: { display: spec.datasets.length > 1, position: "bottom" } },
      scales: scales
    };
  }

  function integerTicks(first, last) {
    var ticks = [];
    for (var v = first; v <= last; v++) { ticks.push({ value: v }); }
    return ticks;
  }

  function heatmapConfig(spec) {
    var o = spec.options;
    var points = spec.datasets[0].data;
    var max = points.reduce(function (m, p) { return Math.max(m, p.v); }, 1);
    var nWeeks = o.weekMax - o.weekMin + 1;
    // Words come translated in the spec's options (the page's language); English otherwise.
    var weekFormat = o.weekFormat || "W%(week)d";
    function weekLabel(w) { return weekFormat.replace("%(week)d", String(w >= 0 ? w + 1 : w)); }
    function cellRadius(ctx) {
      var area = ctx.chart.chartArea;
      if (!area) { return 4; }
      var size = Math.min(area.width / nWeeks, area.height / 7);
      return Math.max(2, size / 2 - 1);
    }
    return {
      type: "scatter",
      data: {
        datasets: [{
          label: spec.datasets[0].label,
          data: points,
          pointStyle: "rect",
          pointRadius: cellRadius,
          pointHoverRadius: cellRadius,
          borderWidth: 0,
          backgroundColor: function (ctx) {
            var p = ctx.raw;
            return alpha(PALETTE[0], p ? 0.15 + 0.85 * (p.v / max) : 0);
          }
        }]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var p = ctx.raw;
                return weekLabel(p.x) + ", " + o.weekdays[p.y] + ": " + p.v + " " + (o.clicksUnit || "clicks");
              }
            }
          }
        },
        scales: {
          x: {
            min: o.weekMin - 0.5, max: o.weekMax + 0.5,
            title: axisTitle(o.weekAxisTitle || "Week of the run"),
            grid: { display: false },
            // Bounds sit half a cell outside the grid, so ticks are placed on
            // the whole weeks explicitly instead of stepping from the bound.
            afterBuildTicks: function (axis) { axis.ticks = integerTicks(o.weekMin, o.weekMax); },
            ticks: { autoSkip: true, maxRotation: 0, callback: function (v) { return weekLabel(v); } }
          },
          y: {
            min: -0.5, max: 6.5, reverse: true,
            grid: { display: false },
            afterBuildTicks: function (axis) { axis.ticks = integerTicks(0, 6); },
            ticks: { autoSkip: false, callback: function (v) { return o.weekdays[v]; } }
          }
        }
      }
    };
  }

  function render(spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas || typeof window.Chart === "undefined") { return null; }
    var config = spec.type === "heatmap" ? heatmapConfig(spec) : {
      type: spec.type,
      data: { labels: spec.labels, datasets: styleDatasets(spec) },
      options: baseOptions(spec)
    };
    return new window.Chart(canvas, config);
  }

  function renderAll(specs) {
    var charts = {};
    Object.keys(specs || {}).forEach(function (id) {
      charts[id] = render(specs[id]);
    });
    // Tests and other scripts can wait for this flag instead of guessing.
    document.documentElement.setAttribute("data-charts-ready", "true");
    return charts;
  }

  window.EduCharts = { PALETTE: PALETTE, readJSON: readJSON, render: render, renderAll: renderAll };
})();
