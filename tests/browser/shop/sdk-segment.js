// The shop's calls made with analytics.js (Segment's e-commerce spec v2 event names).
(function () {
  var queued = Array.isArray(window.tracker) ? window.tracker : [];
  function product(item, quantity) {
    return {product_id: item.id, name: item.name, category: item.category, price: item.price,
            currency: item.currency, quantity: quantity};
  }
  window.tracker = {
    search: function (query, props) {
      window.analytics.track("Products Searched", Object.assign({query: query}, props));
    },
    productView: function (item) { window.analytics.track("Product Viewed", product(item)); },
    addToCart: function (item, quantity) {
      window.analytics.track("Product Added", product(item, quantity));
    },
    checkoutStart: function (props) { window.analytics.track("Checkout Started", props); },
    purchase: function (order) {
      window.analytics.track("Order Completed", {
        order_id: order.id, revenue: order.revenue, currency: order.currency,
        products: order.products.map(function (item) { return product(item, item.quantity); })
      });
    },
    identify: function (userId, traits) { window.analytics.identify(userId, traits); },
    track: function (name, props) { window.analytics.track(name, props); }
  };
  queued.forEach(function (c) { window.tracker[c[0]].apply(window.tracker, c.slice(1)); });
})();
