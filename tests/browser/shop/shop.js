// The test shop's own script: a catalogue, a cart in sessionStorage, and the tracker calls a
// shop would make. window.tracker may still be the pre-load queue (an array) when this runs.
// A call may return a promise (analytics.js's do: resolved once the event was delivered);
// the shop waits for it before it navigates away, as that SDK's docs tell shops to.
window.tracker = window.tracker || [];
var CATALOG = {
  sku_1: {id: "sku_1", name: "Headphones", category: "audio", price: 59.9, currency: "EUR"},
  sku_2: {id: "sku_2", name: "Novel", category: "books", price: 12.5, currency: "EUR"}
};

function call(method) {
  var args = Array.prototype.slice.call(arguments, 1);
  if (Array.isArray(window.tracker)) window.tracker.push([method].concat(args));
  else return window.tracker[method].apply(window.tracker, args);
}

function after(calls, next) {
  Promise.all(calls).then(next, next);
}

function cart() {
  return JSON.parse(window.sessionStorage.getItem("cart") || "[]");
}

document.addEventListener("DOMContentLoaded", function () {
  var page = document.body.dataset.page;
  var params = new URLSearchParams(window.location.search);
  if (page === "product") {
    var item = CATALOG[params.get("sku")];
    document.getElementById("name").textContent = item.name;
    call("productView", item);
    document.getElementById("reviews").addEventListener("click", function () {
      window.history.pushState({}, "", "?sku=" + item.id + "&tab=reviews"); // an SPA-style view
    });
    document.getElementById("add").addEventListener("click", function () {
      var sent = call("addToCart", item, 2);
      window.sessionStorage.setItem("cart", JSON.stringify(cart().concat([item])));
      after([sent], function () { window.location.href = "cart.html"; });
    });
  }
  if (page === "index") {
    document.getElementById("search").addEventListener("submit", function (event) {
      event.preventDefault();
      call("search", document.getElementById("q").value, {results: 2});
    });
  }
  if (page === "cart") {
    document.getElementById("signin").addEventListener("click", function () {
      // The shop's own sign-in succeeded: from now on this visitor is customer_42.
      var sent = call("identify", "customer_42", {email: "c42@example.com", plan: "gold"});
      after([sent], function () { document.getElementById("signin").textContent = "Signed in"; });
    });
    document.getElementById("checkout").addEventListener("click", function () {
      var sent = call("checkoutStart", {items: cart().length});
      after([sent], function () { window.location.href = "checkout.html"; });
    });
  }
  if (page === "checkout") {
    document.getElementById("pay").addEventListener("click", function () {
      var items = cart();
      var revenue = items.reduce(function (sum, item) { return sum + item.price * 2; }, 0);
      var bought = call("purchase", {
        id: "order_" + Date.now(),
        revenue: Math.round(revenue * 100) / 100,
        currency: "EUR",
        products: items.map(function (item) { return Object.assign({quantity: 2}, item); })
      });
      var signedUp = call("track", "newsletter_signup", {source: "checkout"});
      window.sessionStorage.removeItem("cart");
      after([bought, signedUp], function () { window.location.href = "thanks.html"; });
    });
  }
});
