/* Storefront behaviour: product-viewed tracking, add to cart, recommendations and the
 * chat box. Issue #8 replaces the chat box with the full widget. */
(function () {
  "use strict";
  var cdp = window.cdp;
  var auth = { "Authorization": "Basic " + btoa(cdp.writeKey + ":") };

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function money(value) { return "$" + Number(value).toFixed(2); }

  var product = document.querySelector("article.product");
  if (product) {
    var viewed = { product_id: product.dataset.sku, sku: product.dataset.sku,
                   name: product.dataset.name, price: Number(product.dataset.price),
                   category: product.dataset.category, currency: "USD" };
    cdp.track("Product Viewed", viewed).then(function () {
      // The worker applies the view within a moment; then ask for neighbours.
      setTimeout(loadRecommendations, 800);
    });
    cdp.flush(); // the recommendations wait for this view: do not wait for the batch
    document.getElementById("add-to-cart").addEventListener("submit", function (e) {
      e.preventDefault();
      var sku = new FormData(e.target).get("sku");
      fetch("/shop/api/cart", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ cart_id: cdp.anonymousId(), sku: sku, qty: 1 }) })
        .then(function (r) { return r.json(); })
        .then(function (cart) {
          document.getElementById("cart-status").textContent = "Added. Cart total " + money(cart.total);
          cdp.track("Product Added", Object.assign({}, viewed, { sku: sku, quantity: 1 }));
        });
    });
  }

  function loadRecommendations() {
    var list = document.getElementById("recommendations");
    if (!list) return;
    var product = document.querySelector("[data-sku]");
    var url = "/v1/recommendations?limit=4&placement=product&profile=anonymous_id:" +
      encodeURIComponent(cdp.anonymousId()) +
      (product ? "&sku=" + encodeURIComponent(product.dataset.sku) : "");
    fetch(url, { headers: auth }).then(function (r) { return r.json(); }).then(function (body) {
      (body.items || []).forEach(function (item) {
        var li = el("li", null, "card");
        var a = el("a", item.product.name);
        a.href = "/shop/p/" + item.product.url_key;
        li.append(a, el("span", money(item.product.price), "price"), el("span", item.reason, "cat"));
        list.append(li);
      });
    });
  }

  var cartTable = document.getElementById("cart-table");
  if (cartTable) {
    fetch("/shop/api/cart/" + encodeURIComponent(cdp.anonymousId()))
      .then(function (r) { return r.json(); })
      .then(function (cart) {
        cart.lines.forEach(function (line) {
          var row = el("tr");
          row.append(el("td", line.name), el("td", line.sku), el("td", String(line.qty)), el("td", money(line.price)));
          cartTable.tBodies[0].append(row);
        });
        document.getElementById("cart-total").textContent = "Total " + money(cart.total);
        cdp.track("Cart Viewed", { cart_id: cart.cart_id, products: cart.lines.map(function (l) { return { sku: l.sku, quantity: l.qty, price: l.price }; }) });
      });
  }

  var log = document.getElementById("chat-log");
  var KEY = "cdp_chat_log";
  function remember() { sessionStorage.setItem(KEY, log.innerHTML); }
  log.innerHTML = sessionStorage.getItem(KEY) || "";

  function showBot(message) {
    var div = el("div", message.text || "", "bot");
    var products = (message.custom && message.custom.products) || [];
    products.forEach(function (product) {
      var link = el("a", product.name + " (" + money(product.price) + ")");
      link.href = product.url;
      div.append(link, el("br"));
    });
    (message.buttons || []).forEach(function (button) {
      var b = el("button", button.title);
      b.type = "button";
      b.addEventListener("click", function () { say(button.payload, button.title); });
      div.append(el("br"), b);
    });
    log.append(div);
  }

  function say(text, shown) {
    log.append(el("div", shown || text, "me"));
    fetch("/v1/channels/web/messages", {
      method: "POST", headers: Object.assign({ "Content-Type": "application/json" }, auth),
      body: JSON.stringify({ sender: cdp.anonymousId(), text: text }),
    }).then(function (r) { return r.json(); }).then(function (body) {
      if (body.messages) body.messages.forEach(showBot);
      else showBot({ text: "Sorry, the assistant is not available right now." });
      if (body.with_agent) waitForAgent();
    }).catch(function () {
      showBot({ text: "Sorry, the assistant is not available right now." });
    }).finally(function () { log.scrollTop = log.scrollHeight; remember(); });
  }

  // Messages the shopper did not ask for: a person's replies while they have the
  // conversation (every 3 s), a campaign's opening line (every 20 s otherwise).
  var polling = null;
  function fetchWaiting() {
    return fetch("/v1/channels/web/messages/" + encodeURIComponent(cdp.anonymousId()), { headers: auth })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        (body.messages || []).forEach(showBot);
        if (body.messages && body.messages.length) { log.scrollTop = log.scrollHeight; remember(); }
        return body;
      });
  }
  function waitForAgent() {
    if (polling) return;
    polling = setInterval(function () {
      fetchWaiting().then(function (body) {
        if (!body.with_agent) { clearInterval(polling); polling = null; }
      });
    }, 3000);
  }
  fetchWaiting().then(function (body) { if (body.with_agent) waitForAgent(); });
  setInterval(function () { if (!polling) fetchWaiting(); }, 20000);

  document.getElementById("chat-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var input = document.getElementById("chat-input");
    if (input.value.trim()) say(input.value.trim());
    input.value = "";
  });
})();
