// The shop's calls made with an SDK that takes Segment's e-commerce spec v2 event names
// (analytics.js; PostHog's e-commerce spec uses them too). The page's snippet says how the
// SDK tracks and identifies (window.shopSdk); a call returns what the SDK returns (analytics.js:
// a promise the shop awaits before it navigates). What shop.js queued before is replayed.
(function () {
  var sdk = window.shopSdk;
  var queued = Array.isArray(window.tracker) ? window.tracker : [];
  function product(item, quantity) {
    return {product_id: item.id, name: item.name, category: item.category, price: item.price,
            currency: item.currency, quantity: quantity};
  }
  window.tracker = {
    search: function (query, props) {
      return sdk.track("Products Searched", Object.assign({query: query}, props));
    },
    productView: function (item) { return sdk.track("Product Viewed", product(item)); },
    addToCart: function (item, quantity) {
      return sdk.track("Product Added", product(item, quantity));
    },
    checkoutStart: function (props) { return sdk.track("Checkout Started", props); },
    purchase: function (order) {
      return sdk.track("Order Completed", {
        order_id: order.id, revenue: order.revenue, currency: order.currency,
        products: order.products.map(function (item) { return product(item, item.quantity); })
      });
    },
    identify: function (userId, traits) { return sdk.identify(userId, traits); },
    track: function (name, props) { return sdk.track(name, props); }
  };
  queued.forEach(function (c) { window.tracker[c[0]].apply(window.tracker, c.slice(1)); });
})();
