/* Storefront behaviour: product-viewed tracking, add to cart (from the page and from
 * the chat widget's cards) and recommendations. The chat widget is its own script. */
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

  function addToCart(sku, qty) {
    return fetch("/shop/api/cart", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ cart_id: cdp.anonymousId(), sku: sku, qty: qty }) })
      .then(function (r) {
        if (!r.ok) throw new Error("the cart answered " + r.status);
        return r.json();
      });
  }

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
      addToCart(sku, 1).then(function (cart) {
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

  // The chat widget's product cards (channels/static/chat.js): "Add to cart" there
  // adds to this shop's cart, and the widget shows the line the promise gives.
  document.addEventListener("cdp:add-to-cart", function (event) {
    var item = event.detail;
    event.preventDefault();
    item.waitUntil(addToCart(item.sku, item.quantity).then(function (cart) {
      cdp.track("Product Added", { product_id: item.sku, sku: item.sku, name: item.name,
        price: item.price, currency: item.currency, quantity: item.quantity,
        cart_id: cart.cart_id, source: "chat" });
      return "Added the " + item.name + " to your cart. Cart total " + money(cart.total) + ".";
    }));
  });
})();
