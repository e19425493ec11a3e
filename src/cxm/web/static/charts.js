// Draw every chart on the page from its embedded figure; the table beside it stays as fallback.
document.querySelectorAll(".plot[data-figure]").forEach(function (el) {
  var fig = JSON.parse(el.dataset.figure);
  Plotly.newPlot(el, fig.data, fig.layout, {displayModeBar: false, responsive: true});
});
