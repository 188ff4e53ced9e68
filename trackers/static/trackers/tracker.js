/*
 * tracker.js: the first-party browser tracker of this analytics server (ADR 0018).
 * No dependency, no cookie. Ids live in localStorage (data-storage="local", the default) or in
 * memory only (data-storage="memory": a new anonymous id on every page load).
 *
 *   <script defer src="https://analytics.example.com/static/trackers/tracker.js"
 *           data-key="pk_..." data-host="https://analytics.example.com"></script>
 *
 * Options (data- attributes): key (a public key), host (default: where this file came from),
 * storage (local | memory), respect-privacy (true: send nothing under Do-Not-Track or Global
 * Privacy Control; false to ignore them), auto-pageviews (true), batch-size (20),
 * flush-interval (ms, 2000).
 *
 * API (window.tracker; calls made before the script loaded, queued as
 * `window.tracker = window.tracker || []; tracker.push(["track", "signup", {plan: "pro"}])`,
 * are replayed): track(name, props), page(props), identify(userId, traits),
 * alias(userId, previousId), reset(), flush(), productView(product), addToCart(product,
 * quantity), removeFromCart(product, quantity), checkoutStart(props), purchase(order),
 * search(query, props).
 * A product is {id, category, price, currency}; an order {id, revenue, currency, products}.
 *
 * Events go to POST {host}/events/batch?key=... as text/plain JSON (no CORS preflight), with
 * fetch keepalive, or sendBeacon when the page is hidden. Failed sends are retried with
 * exponential backoff (event ids make resends safe). Session, device and country are not
 * sent: the server derives them. identify() keeps the user id for later events and posts
 * {user_id, anonymous_id, traits} to {host}/identify (the server links the two ids: one
 * person); alias() posts {previous_id, user_id} to {host}/alias. Both are JSON (answered
 * preflights, for the key's origins only), retried like events (the calls are idempotent).
 */
(function (window, document, navigator) {
  "use strict";

  var script = document.currentScript || {dataset: {}};
  var data = script.dataset || {};
  var config = {
    key: data.key || "",
    host: (data.host || new URL(script.src || "/", window.location.href).origin).replace(/\/+$/, ""),
    memoryOnly: data.storage === "memory",
    respectPrivacy: data.respectPrivacy !== "false",
    autoPageviews: data.autoPageviews !== "false",
    batchSize: parseInt(data.batchSize, 10) || 20,
    flushInterval: parseInt(data.flushInterval, 10) || 2000
  };
  var MAX_ATTEMPTS = 8;
  var MAX_QUEUE = 1000;
  var STORE_PREFIX = "_tracker_";

  var queued = window.tracker;
  var memory = {};
  var queue = [];
  var attempts = 0;
  var timer = null;
  var sending = false;
  var lastPage = null;

  function privacySignal() {
    return navigator.globalPrivacyControl === true || navigator.doNotTrack === "1" ||
      window.doNotTrack === "1";
  }
  var disabled = !config.key || (config.respectPrivacy && privacySignal());

  function stored(name, value) {
    // Reads (and with a value, writes) an id; memory when asked or when storage is refused.
    try {
      if (!config.memoryOnly) {
        if (value !== undefined) {
          if (value === null) window.localStorage.removeItem(STORE_PREFIX + name);
          else window.localStorage.setItem(STORE_PREFIX + name, value);
        }
        return window.localStorage.getItem(STORE_PREFIX + name);
      }
    } catch (error) { /* storage disabled: fall through to memory */ }
    if (value !== undefined) memory[name] = value;
    return memory[name] || null;
  }

  function uuid() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    var bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) {
      return (b + 0x100).toString(16).slice(1);
    }).join("");
    return hex.replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-");
  }

  function anonymousId() {
    return stored("anonymous_id") || stored("anonymous_id", uuid());
  }

  function product(fields, item) {
    // Our wire fields from a product object; missing values are left out, not sent as null.
    item = item || {};
    if (item.id != null) fields.product_id = String(item.id);
    if (item.category != null) fields.category = String(item.category);
    if (item.price != null) fields.price = Number(item.price);
    if (item.currency) fields.currency = String(item.currency);
    return fields;
  }

  function enqueue(name, fields, props) {
    if (disabled) return;
    var event = fields || {};
    event.event_id = uuid();
    event.event_type = String(name);
    event.timestamp = new Date().toISOString();
    event.anonymous_id = anonymousId();
    var userId = stored("user_id");
    if (userId) event.user_id = userId;
    event.page_url = window.location.href;
    if (document.referrer) event.referrer = document.referrer;
    if (props && typeof props === "object") event.properties = props;
    queue.push(event);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    if (queue.length >= config.batchSize) flush();
    else schedule(config.flushInterval);
  }

  function schedule(delay) {
    if (timer === null) timer = window.setTimeout(function () { timer = null; flush(); }, delay);
  }

  function endpoint() {
    return config.host + "/events/batch?key=" + encodeURIComponent(config.key);
  }

  function body(batch) {
    var now = new Date().toISOString();
    return JSON.stringify({events: batch.map(function (event) {
      event.sent_at = now; // the server corrects the client's clock skew with it
      return event;
    })});
  }

  function retryLater(batch, retryAfter) {
    // Back to the front of the queue; 1 s, 2 s, 4 s ... up to a minute, then give up.
    attempts += 1;
    if (attempts >= MAX_ATTEMPTS) { attempts = 0; return; }
    queue = batch.concat(queue).slice(0, MAX_QUEUE);
    var backoff = Math.min(60000, 1000 * Math.pow(2, attempts - 1));
    schedule(Math.max(backoff, (retryAfter || 0) * 1000));
  }

  function flush() {
    if (sending || !queue.length) return;
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    var batch = queue.splice(0, config.batchSize);
    sending = true;
    window.fetch(endpoint(), {
      method: "POST",
      body: body(batch),
      headers: {"Content-Type": "text/plain"},
      credentials: "omit",
      keepalive: true
    }).then(function (response) {
      sending = false;
      if (response.status === 429 || response.status >= 500) {
        retryLater(batch, parseFloat(response.headers.get("Retry-After")));
        return;
      }
      attempts = 0; // delivered, or refused for good (4xx: resending would not help)
      if (queue.length) schedule(0);
    }, function () {
      sending = false;
      retryLater(batch);
    });
  }

  function identityCall(path, payload, attempt) {
    // One request per identify or alias call; a network failure, a 429 or a 5xx is retried
    // with the events' backoff (the payload keeps its timestamp, so a late retry is in order).
    window.fetch(config.host + path + "?key=" + encodeURIComponent(config.key), {
      method: "POST",
      body: JSON.stringify(payload),
      headers: {"Content-Type": "application/json"},
      credentials: "omit",
      keepalive: true
    }).then(function (response) {
      if (response.status === 429 || response.status >= 500) {
        identityRetry(path, payload, attempt, parseFloat(response.headers.get("Retry-After")));
      }
    }, function () { identityRetry(path, payload, attempt); });
  }

  function identityRetry(path, payload, attempt, retryAfter) {
    if (attempt + 1 >= MAX_ATTEMPTS) return;
    var backoff = Math.min(60000, 1000 * Math.pow(2, attempt));
    window.setTimeout(function () {
      identityCall(path, payload, attempt + 1);
    }, Math.max(backoff, (retryAfter || 0) * 1000));
  }

  function identify(userId, traits) {
    if (disabled || userId == null || userId === "") return;
    userId = String(userId);
    stored("user_id", userId);
    var payload = {
      user_id: userId, anonymous_id: anonymousId(), timestamp: new Date().toISOString()
    };
    if (traits && typeof traits === "object") payload.traits = traits;
    identityCall("/identify", payload, 0);
  }

  function alias(userId, previousId) {
    // Segment's order: the new id first; the previous one defaults to the current id.
    if (disabled || userId == null || userId === "") return;
    userId = String(userId);
    var previous = previousId != null ? String(previousId) : stored("user_id") || anonymousId();
    stored("user_id", userId);
    if (previous === userId) return;
    identityCall("/alias", {
      previous_id: previous, user_id: userId, timestamp: new Date().toISOString()
    }, 0);
  }

  function flushOnHide() {
    // The page may be gone before a fetch answers: hand what is left to the browser.
    if (timer !== null) { window.clearTimeout(timer); timer = null; }
    while (queue.length) {
      var batch = queue.splice(0, config.batchSize);
      var sent = navigator.sendBeacon && navigator.sendBeacon(endpoint(), body(batch));
      if (!sent) {
        queue = batch.concat(queue);
        sending = false;
        flush();
        return;
      }
    }
  }

  function page(props) {
    var url = window.location.href;
    if (url === lastPage && !props) return; // replaceState to the same address
    lastPage = url;
    enqueue("page_view", {}, props);
  }

  var api = {
    track: function (name, props) { enqueue(name, {}, props); },
    page: page,
    identify: identify,
    alias: alias,
    reset: function () { stored("user_id", null); stored("anonymous_id", null); },
    flush: flush,
    productView: function (item, props) {
      enqueue("product_view", product({}, item), props);
    },
    addToCart: function (item, quantity, props) {
      enqueue("add_to_cart", product({quantity: quantity || 1}, item), props);
    },
    removeFromCart: function (item, quantity, props) {
      enqueue("remove_from_cart", product({quantity: quantity || 1}, item), props);
    },
    checkoutStart: function (props) { enqueue("checkout_start", {}, props); },
    purchase: function (order, props) {
      order = order || {};
      var fields = {order_id: String(order.id), revenue: Number(order.revenue)};
      if (order.currency) fields.currency = String(order.currency);
      var products = order.products || [];
      if (products.length === 1) {
        product(fields, products[0]);
        if (products[0].quantity != null) fields.quantity = Number(products[0].quantity);
      }
      if (products.length) {
        props = props || {};
        props.products = products;
      }
      enqueue("purchase", fields, props);
    },
    search: function (query, props) { enqueue("search", {search_query: String(query)}, props); },
    disabled: disabled
  };
  window.tracker = api;

  if (Array.isArray(queued)) {
    queued.forEach(function (call) {
      var method = api[call[0]];
      if (typeof method === "function") method.apply(api, Array.prototype.slice.call(call, 1));
    });
  }
  if (disabled) return;

  if (config.autoPageviews) {
    page();
    ["pushState", "replaceState"].forEach(function (name) {
      var original = window.history[name];
      window.history[name] = function () {
        var result = original.apply(this, arguments);
        page();
        return result;
      };
    });
    window.addEventListener("popstate", function () { page(); });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") flushOnHide();
  });
  window.addEventListener("pagehide", flushOnHide);
})(window, document, navigator);
