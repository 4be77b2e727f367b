// Draw every figure of the page from the JSON embedded next to its container. The figures are
// serialised by Python as plain JSON (never as code), so user text inside them cannot run.
(function () {
  // plotly's default font, Open Sans, is not on most machines and must not be fetched; use the page's.
  var pageFont = getComputedStyle(document.body).fontFamily;
  var containers = document.querySelectorAll("div.plotly-figure[data-figure]");
  for (var i = 0; i < containers.length; i++) {
    var el = containers[i];
    var spec = JSON.parse(document.getElementById(el.getAttribute("data-figure")).textContent);
    var layout = spec.layout || {};
    layout.font = Object.assign({ family: pageFont }, layout.font || {});
    Plotly.newPlot(el, spec.data || [], layout, {
      responsive: true,
      displaylogo: false,
      modeBarButtonsToRemove: ["sendDataToCloud"]
    });
  }
})();
