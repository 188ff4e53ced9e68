// The shop's calls made with Snowplow's browser tracker and its e-commerce plugin (the
// snowplow_ecommerce_action events); a search is the site_search event, the newsletter a
// structured event, and signing in is setUserId. The page view is tracked on load.
(function () {
  var sp = window.snowplowBrowserTracking;
  var shop = window.snowplowEcommerceAccelerator;
  var queued = Array.isArray(window.tracker) ? window.tracker : [];
  function product(item, quantity) {
    return {id: item.id, name: item.name, category: item.category, price: item.price,
            currency: item.currency, quantity: quantity};
  }
  window.tracker = {
    search: function (query) {
      sp.trackSelfDescribingEvent({event: {
        schema: "iglu:com.snowplowanalytics.snowplow/site_search/jsonschema/1-0-0",
        data: {terms: [query]}
      }});
    },
    productView: function (item) { shop.trackProductView(product(item)); },
    addToCart: function (item, quantity) {
      shop.trackAddToCart({products: [product(item, quantity)], total_value: item.price * quantity,
                           currency: item.currency});
    },
    checkoutStart: function () { shop.trackCheckoutStep({step: 1}); },
    purchase: function (order) {
      shop.trackTransaction({
        transaction_id: order.id, revenue: order.revenue, currency: order.currency,
        payment_method: "card", total_quantity: order.products.length * 2,
        products: order.products.map(function (item) { return product(item, item.quantity); })
      });
    },
    identify: function (userId) { sp.setUserId(userId); },
    track: function (name, props) {
      sp.trackStructEvent({category: "shop", action: name, label: props.source});
    }
  };
  sp.setUserId(window.localStorage.getItem("shop_user"));  // the shop's own signed-in state
  var identify = window.tracker.identify;
  window.tracker.identify = function (userId) {
    window.localStorage.setItem("shop_user", userId);
    identify(userId);
  };
  sp.trackPageView();
  queued.forEach(function (c) { window.tracker[c[0]].apply(window.tracker, c.slice(1)); });
})();
