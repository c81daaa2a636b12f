// Search as you type: fills the search box's list with names from the API's suggest endpoint.
// The catalogue works without it; nothing here changes the page beyond the <datalist>.
(function () {
  "use strict";
  var input = document.getElementById("q");
  var list = document.getElementById("suggestions");
  if (!input || !list || !window.fetch) { return; }
  var timer = null;
  var asked = "";
  input.addEventListener("input", function () {
    clearTimeout(timer);
    var text = input.value.trim();
    if (text.length < 2 || text === asked) { return; }
    timer = setTimeout(function () {
      asked = text;
      fetch("/api/v1/suggest?limit=8&q=" + encodeURIComponent(text), { headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (body) {
          if (!body || !Array.isArray(body.names)) { return; }
          list.replaceChildren.apply(list, body.names.map(function (name) {
            var option = document.createElement("option");
            option.value = String(name);
            return option;
          }));
        })
        .catch(function () { /* suggestions are a convenience */ });
    }, 150);
  });
})();
