/*
 * Dashboard charts: every <canvas data-chart="ID"> is drawn from the JSON spec in
 * <script id="ID" type="application/json"> (written by Django's json_script, built in
 * reports/charts.py). Runs on page load and on every htmx swap; charts whose canvas is
 * swapped out are destroyed first, so polling and filter changes never leak Chart instances.
 */
(function () {
  "use strict";

  var PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899",
    "#84cc16", "#64748b", "#f97316"];
  var TARGET_COLOR = "#dc2626";
  var REDUCED_MOTION = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function formatValue(kind, value) {
    if (value === null || value === undefined) return "–";
    if (kind === "percent") return (value * 100).toFixed(value >= 0.999 || value < 0.9 ? 1 : 2) + "%";
    if (kind === "money") {
      return Number(value).toLocaleString(undefined, { minimumFractionDigits: 0, maximumFractionDigits: 2 });
    }
    return Number(value).toLocaleString();
  }

  function withAlpha(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function dataset(spec, item, index) {
    var color = PALETTE[index % PALETTE.length];
    var base = { label: item.label, data: item.data };
    if (spec.type === "doughnut") {
      return Object.assign(base, {
        backgroundColor: item.data.map(function (_, i) { return PALETTE[i % PALETTE.length]; }),
        borderWidth: 1,
      });
    }
    if (item.role === "target") {
      return Object.assign(base, {
        type: "line", borderColor: TARGET_COLOR, borderDash: [6, 4], borderWidth: 1.5,
        pointRadius: 0, fill: false, order: 0,
      });
    }
    if (spec.type === "line") {
      var many = item.data.length > 40;
      return Object.assign(base, {
        borderColor: color, backgroundColor: withAlpha(color, 0.12), borderWidth: 2,
        fill: spec.datasets.length === 1, tension: 0.25, spanGaps: false,
        pointRadius: many ? 0 : 2.5, pointHoverRadius: 4, order: 1,
      });
    }
    return Object.assign(base, {
      backgroundColor: spec.datasets.length === 1 ? withAlpha(color, 0.85) : color,
      borderRadius: 3, maxBarThickness: 48,
    });
  }

  function chartConfig(spec, canvas) {
    var kind = spec.format || "number";
    var tooltip = {
      callbacks: {
        label: function (ctx) {
          var value = ctx.raw;
          return (ctx.dataset.label ? ctx.dataset.label + ": " : "") + formatValue(kind, value);
        },
      },
    };
    var wide = canvas.parentElement && canvas.parentElement.clientWidth > 420;
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: spec.animate === false || REDUCED_MOTION ? false : { duration: 300 },
      interaction: { mode: spec.type === "doughnut" ? "nearest" : "index", intersect: false },
      plugins: {
        legend: {
          display: spec.type === "doughnut" || spec.datasets.length > 1,
          position: spec.type === "doughnut" && wide ? "right" : "bottom",
          labels: { boxWidth: 12, boxHeight: 12 },
        },
        tooltip: tooltip,
      },
    };
    if (spec.type !== "doughnut") {
      var valueAxis = {
        beginAtZero: kind !== "percent",
        grid: { color: "#eef1f5" },
        ticks: { callback: function (v) { return formatValue(kind, v); }, maxTicksLimit: 6, precision: kind === "number" ? 0 : undefined },
      };
      if (kind === "percent") valueAxis.suggestedMax = 1;
      var labelAxis = { grid: { display: false }, ticks: { autoSkip: !spec.horizontal, maxRotation: 0, autoSkipPadding: 12 } };
      if (spec.horizontal) {
        // long names (rules, SKUs) are shortened on the axis; the tooltip shows them whole
        labelAxis.ticks.callback = function (value) {
          var label = String(this.getLabelForValue(value));
          return label.length > 22 ? label.slice(0, 21) + "…" : label;
        };
      }
      if (spec.horizontal && canvas.parentElement) {
        // one readable row per bar: the box grows with the number of labels
        canvas.parentElement.style.height = Math.max(160, 26 * spec.labels.length + 50) + "px";
      }
      options.indexAxis = spec.horizontal ? "y" : "x";
      options.scales = spec.horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis };
    } else {
      options.cutout = "60%";
    }
    return {
      type: spec.type,
      data: { labels: spec.labels, datasets: spec.datasets.map(function (d, i) { return dataset(spec, d, i); }) },
      options: options,
    };
  }

  function destroyWithin(root) {
    if (!window.Chart || !root || !root.querySelectorAll) return;
    var canvases = root.matches && root.matches("canvas") ? [root] : root.querySelectorAll("canvas");
    Array.prototype.forEach.call(canvases, function (canvas) {
      var chart = window.Chart.getChart(canvas);
      if (chart) chart.destroy();
    });
  }

  function destroyDetached() {
    if (!window.Chart) return;
    Object.values(window.Chart.instances).forEach(function (chart) {
      if (!document.body.contains(chart.canvas)) chart.destroy();
    });
  }

  function renderCharts(root) {
    if (!window.Chart) return;
    destroyDetached();
    var scope = root && root.querySelectorAll ? root : document;
    Array.prototype.forEach.call(scope.querySelectorAll("canvas[data-chart]"), function (canvas) {
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      var existing = window.Chart.getChart(canvas);
      if (existing) existing.destroy();
      try {
        new window.Chart(canvas, chartConfig(JSON.parse(source.textContent), canvas));
      } catch (error) {
        console.error("chart " + canvas.dataset.chart + " failed:", error);
      }
    });
  }

  window.dashboardCharts = { render: renderCharts, destroyWithin: destroyWithin };

  document.addEventListener("htmx:beforeSwap", function (event) { destroyWithin(event.detail.target); });
  document.addEventListener("htmx:load", function (event) { renderCharts(event.target); });
  document.addEventListener("htmx:afterSettle", destroyDetached);
  document.addEventListener("htmx:historyRestore", function () { renderCharts(document); });
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.htmx) renderCharts(document); // without htmx, htmx:load never fires
  });
})();
