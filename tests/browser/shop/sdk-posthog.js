// The shop's calls made with posthog-js (PostHog's e-commerce spec: Segment's v2 event names).
// Replaces the tracker.js API that shop.js calls; what shop.js queued before is replayed.
(function () {
  var queued = Array.isArray(window.tracker) ? window.tracker : [];
  function product(item, quantity) {
    return {product_id: item.id, name: item.name, category: item.category, price: item.price,
            currency: item.currency, quantity: quantity};
  }
  window.tracker = {
    search: function (query, props) {
      window.posthog.capture("Products Searched", Object.assign({query: query}, props));
    },
    productView: function (item) { window.posthog.capture("Product Viewed", product(item)); },
    addToCart: function (item, quantity) {
      window.posthog.capture("Product Added", product(item, quantity));
    },
    checkoutStart: function (props) { window.posthog.capture("Checkout Started", props); },
    purchase: function (order) {
      window.posthog.capture("Order Completed", {
        order_id: order.id, revenue: order.revenue, currency: order.currency,
        products: order.products.map(function (item) { return product(item, item.quantity); })
      });
    },
    identify: function (userId, traits) { window.posthog.identify(userId, traits); },
    track: function (name, props) { window.posthog.capture(name, props); }
  };
  queued.forEach(function (c) { window.tracker[c[0]].apply(window.tracker, c.slice(1)); });
})();
