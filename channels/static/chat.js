/* chat.js: the website chat widget, served by the api and embedded with one tag:
 *
 *   <script src="https://cdp.example.com/v1/channels/web/chat.js"
 *           data-write-key="KEY" async></script>
 *
 * It talks to the assistant through the api's web channel (POST and GET
 * /v1/channels/web/messages) and shows text, buttons, quick replies
 * (custom.quick_replies: chips that go once answered) and product cards
 * (custom.products). Options: data-api-host (default: where this script came from),
 * data-title (default "Shopping assistant").
 *
 * - One profile: the sender is the tracker's anonymous id (window.cdp from cdp.js, or
 *   its cdp_aid cookie), so the chat lands on the profile of the browsing. Without
 *   either, or while the tracker waits for consent, the widget keeps an id for this
 *   tab only and sets no cookie: it is not the tracker.
 * - The conversation survives page loads: its messages are kept as data (never as
 *   HTML) in sessionStorage, with the open or closed state and the unsent draft.
 * - Bot text is always shown as text; links and images accept http(s) URLs only.
 * - Cards: following the link tracks "Product Clicked" through the tracker; "Add to
 *   cart" dispatches a cancelable "cdp:add-to-cart" CustomEvent on document. A shop
 *   that handles it calls event.preventDefault() and may pass a Promise to
 *   event.detail.waitUntil(promise) (resolving to the line to show, or rejecting);
 *   when nobody handles it the widget asks the assistant to add the product.
 * - Messages nobody asked for (a campaign's opening line, a person's replies) are
 *   fetched on load, every 20 s and every 3 s while a person has the conversation;
 *   they open the widget.
 * - When the api or the assistant is down, the shopper's message stays in the log
 *   with "Send again"; nothing they typed is lost.
 */
(function () {
  "use strict";
  if (window.cdpChat) return; // the tag was included twice

  var script = document.currentScript ||
    document.querySelector("script[src*='/channels/web/chat.js']");
  var scriptOrigin = script ? new URL(script.src, location.href).origin : "";
  var apiHost = option("data-api-host", scriptOrigin);
  var title = option("data-title", "Shopping assistant");
  var POLL_MS = 20000;
  var AGENT_POLL_MS = 3000;
  var MAX_MESSAGES = 200;
  var COOKIE = "cdp_aid"; // the tracker's anonymous id (cdp.js)
  var UNAVAILABLE = "Sorry, I can't answer right now. Your message is kept: " +
    "send it again in a moment.";
  var INTERRUPTED = "The page changed before an answer came. Send it again?";

  var state = null; // what survives page loads: see load()
  var ui = {};
  var sending = Promise.resolve(); // messages go one after the other, in order
  var pollTimer = null;

  function option(name, fallback) {
    var value = script && script.getAttribute(name);
    return value ? value : fallback;
  }

  function writeKey() {
    return option("data-write-key", (window.cdp && window.cdp.writeKey) || "");
  }

  function storeKey() { return "cdp_chat:" + writeKey(); }

  // Storage ---------------------------------------------------------------------

  function load() {
    var saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(storeKey()) || "null");
    } catch (e) { /* unreadable: start afresh */ }
    state = Object.assign(
      { sender: null, open: false, unread: 0, withAgent: false, draft: "", messages: [] },
      saved || {});
    state.messages.forEach(function (m) {
      // This page did not send it: whatever answer came went to the page before.
      if (m.status === "sending") { m.status = "failed"; m.note = INTERRUPTED; }
    });
  }

  function save() {
    state.messages = state.messages.slice(-MAX_MESSAGES);
    try {
      sessionStorage.setItem(storeKey(), JSON.stringify(state));
    } catch (e) { /* storage full or disabled: this page still works */ }
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 0x3) | 0x8).toString(16);
    });
  }

  function readCookie(name) {
    var match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]+)"));
    return match ? decodeURIComponent(match[1]) : null;
  }

  // The tracker's id when it may use one; else this tab's own.
  function sender() {
    var cdp = window.cdp;
    var tracking = cdp && cdp.anonymousId &&
      (!cdp.consent || cdp.consent.status() === "granted");
    var id = (tracking && cdp.anonymousId()) || readCookie(COOKIE) || state.sender ||
      uuid();
    if (id !== state.sender) { state.sender = id; save(); }
    return id;
  }

  // The api ---------------------------------------------------------------------

  function request(method, path, body) {
    var headers = { "Authorization": "Basic " + btoa(writeKey() + ":") };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(apiHost + "/v1/channels/web" + path, {
      method: method, headers: headers, credentials: "omit",
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (response) {
      if (!response.ok) throw new Error("chat api answered " + response.status);
      return response.json();
    });
  }

  // Conversation ----------------------------------------------------------------

  function say(payload, shown) {
    var message = { id: uuid(), from: "shopper", text: shown || payload,
                    payload: payload };
    add(message);
    send(message);
  }

  function send(message) {
    setStatus(message, "sending");
    sending = sending.then(function () {
      typing(true);
      return request("POST", "/messages", { sender: sender(), text: message.payload })
        .then(function (body) {
          setStatus(message, "sent");
          receive(body, false);
        }, function () {
          setStatus(message, "failed", UNAVAILABLE);
        })
        .then(function () { typing(false); });
    });
  }

  function receive(body, proactive) {
    setWithAgent(Boolean(body.with_agent));
    var shown = (body.messages || []).map(fromBot).filter(Boolean);
    shown.forEach(add);
    if (proactive && shown.length) open(false);
  }

  function fromBot(raw) {
    var custom = raw.custom || {};
    var message = {
      id: uuid(), from: state.withAgent ? "agent" : "assistant", text: raw.text || "",
      buttons: choices(raw.buttons), quickReplies: choices(custom.quick_replies),
      products: list(custom.products).filter(function (p) {
        return p && p.name && p.sku;
      }),
    };
    var empty = !message.text && !message.buttons.length && !message.products.length &&
      !message.quickReplies.length;
    return empty ? null : message;
  }

  function choices(value) {
    return list(value).filter(function (c) {
      return c && c.title && c.payload;
    }).map(function (c) {
      return { title: String(c.title), payload: String(c.payload) };
    });
  }

  function list(value) { return Array.isArray(value) ? value : []; }

  function notice(text) { add({ id: uuid(), from: "notice", text: text }); }

  function poll() {
    clearTimeout(pollTimer);
    if (document.visibilityState === "hidden") return schedulePoll();
    request("GET", "/messages/" + encodeURIComponent(sender()))
      .then(function (body) { receive(body, true); }, function () { /* next round */ })
      .then(schedulePoll);
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, state.withAgent ? AGENT_POLL_MS : POLL_MS);
  }

  // Cards -----------------------------------------------------------------------

  function clicked(product, position) {
    if (!window.cdp || !window.cdp.track) return;
    // The tracker stores the event before the page changes, and sends it from the next.
    window.cdp.track("Product Clicked", {
      product_id: product.sku, sku: product.sku, name: product.name, price: product.price,
      currency: product.currency || "USD", url: product.url, position: position,
      list_id: "chat",
    });
  }

  function addToCart(product) {
    var result = null;
    var detail = {
      sku: product.sku, name: product.name, price: product.price,
      currency: product.currency || "USD", url: product.url, quantity: 1,
      waitUntil: function (promise) { result = promise; },
    };
    var event = new CustomEvent("cdp:add-to-cart",
      { detail: detail, bubbles: true, cancelable: true });
    if (document.dispatchEvent(event)) {
      // No shop code took it: the assistant's cart form asks for size and colour.
      say("/add_to_cart" + JSON.stringify({ product: product.sku }),
        "Add the " + product.name + " to my cart");
      return;
    }
    if (!result) return;
    Promise.resolve(result).then(function (line) {
      var added = "Added the " + product.name + " to your cart.";
      notice(typeof line === "string" && line ? line : added);
    }, function () {
      notice("Sorry, the " + product.name + " could not be added to your cart. " +
        "Please try again.");
    });
  }

  function safeUrl(value) {
    try {
      var url = new URL(String(value), location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) { return null; }
  }

  function money(amount, currency) {
    try {
      return new Intl.NumberFormat(navigator.language || "en-US",
        { style: "currency", currency: currency || "USD" }).format(amount);
    } catch (e) { return Number(amount).toFixed(2) + " " + (currency || ""); }
  }

  // Rendering -------------------------------------------------------------------

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text; // never HTML
    return node;
  }

  function button(cls, text, onClick) {
    var node = el("button", cls, text);
    node.type = "button";
    node.addEventListener("click", onClick);
    return node;
  }

  function add(message) {
    state.messages.push(message);
    if (message.from !== "shopper" && !state.open) state.unread += 1;
    save();
    // Quick replies belong to the last message only: answered or passed, they go.
    Array.prototype.forEach.call(ui.log.querySelectorAll(".quick"), function (node) {
      node.remove();
    });
    ui.log.append(view(message, true));
    showBadge();
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function view(message, last) {
    var node = el("div", "msg " + message.from);
    node.dataset.id = message.id;
    var who = { shopper: "You", assistant: "Assistant", agent: "Our team", notice: "" };
    if (who[message.from]) node.append(el("span", "sr-only", who[message.from] + ": "));
    if (message.text) node.append(el("p", "text", message.text));
    var onCard = {};
    if (message.products && message.products.length) {
      var cards = el("div", "cards");
      message.products.forEach(function (product, i) {
        // A button that names a card's product asks about it: it goes on the card.
        var ask = list(message.buttons).filter(function (b) {
          return b.title === product.name;
        })[0];
        if (ask) onCard[ask.payload] = true;
        cards.append(card(product, i + 1, ask));
      });
      node.append(cards);
    }
    var rest = list(message.buttons).filter(function (b) { return !onCard[b.payload]; });
    if (rest.length) {
      var buttons = el("div", "buttons");
      rest.forEach(function (b) {
        buttons.append(button("choice", b.title, function () {
          say(b.payload, b.title);
        }));
      });
      node.append(buttons);
    }
    if (last && message.quickReplies && message.quickReplies.length) {
      var chips = el("div", "quick");
      chips.setAttribute("role", "group");
      chips.setAttribute("aria-label", "Suggested replies");
      message.quickReplies.forEach(function (q) {
        chips.append(button("chip", q.title, function () { say(q.payload, q.title); }));
      });
      node.append(chips);
    }
    if (message.from === "shopper") shopperStatus(node, message);
    return node;
  }

  function card(product, position, ask) {
    var node = el("article", "card");
    node.setAttribute("aria-label", product.name);
    var href = safeUrl(product.url);
    var image = product.image && safeUrl(product.image);
    var picture = image ? el("img", "picture")
      : el("span", "picture none", String(product.name).charAt(0));
    if (image) { picture.src = image; picture.alt = ""; picture.loading = "lazy"; }
    picture.setAttribute("aria-hidden", "true");
    var name = el(href ? "a" : "span", "name", product.name);
    if (href) {
      name.href = href;
      name.addEventListener("click", function () { clicked(product, position); });
    }
    var price = el("span", "price", money(product.price, product.currency));
    node.append(picture, name, price);
    var actions = el("div", "actions");
    actions.append(button("add", "Add to cart", function () { addToCart(product); }));
    if (ask) {
      actions.append(button("ask", "Details", function () {
        say(ask.payload, ask.title);
      }));
    }
    node.append(actions);
    return node;
  }

  function shopperStatus(node, message) {
    node.classList.toggle("failed", message.status === "failed");
    node.classList.toggle("sending", message.status === "sending");
    var old = node.querySelector(".failure");
    if (old) old.remove();
    if (message.status !== "failed") return;
    var failure = el("div", "failure");
    failure.append(el("span", "note", message.note || UNAVAILABLE));
    failure.append(button("resend", "Send again", function () { send(message); }));
    node.append(failure);
  }

  function setStatus(message, status, note) {
    message.status = status;
    message.note = note;
    save();
    var node = ui.log.querySelector('[data-id="' + message.id + '"]');
    if (node) shopperStatus(node, message);
  }

  function setWithAgent(value) {
    if (value !== state.withAgent) {
      state.withAgent = value;
      save();
      schedulePoll(); // a person answers within seconds: ask more often
    }
    ui.handover.hidden = !value;
  }

  function typing(on) { ui.typing.hidden = !on; }

  function showBadge() {
    var count = state.open ? 0 : state.unread;
    ui.badge.hidden = count === 0;
    ui.badge.textContent = String(count);
    ui.launcher.setAttribute("aria-label", count
      ? "Chat with us, " + count + " unread message" + (count === 1 ? "" : "s")
      : "Chat with us");
  }

  function open(focus) {
    state.open = true;
    state.unread = 0;
    save();
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    showBadge();
    ui.log.scrollTop = ui.log.scrollHeight;
    if (focus) ui.input.focus(); // never steal the focus for a message nobody asked for
  }

  function close() {
    state.open = false;
    save();
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    showBadge();
    ui.launcher.focus();
  }

  function build() {
    var host = el("div");
    host.id = "cdp-chat";
    var root = host.attachShadow({ mode: "open" }); // the shop's styles stay outside
    root.append(el("style", null, STYLE));
    ui.launcher = button("launcher", "Chat", function () {
      if (state.open) close(); else open(true);
    });
    ui.launcher.setAttribute("aria-controls", "panel");
    ui.badge = el("span", "badge");
    ui.badge.setAttribute("aria-hidden", "true");
    ui.launcher.append(ui.badge);
    ui.panel = el("section", "panel");
    ui.panel.id = "panel";
    ui.panel.setAttribute("aria-label", title);
    var header = el("header");
    header.append(el("h2", null, title), button("close", "\u00d7", close));
    header.lastChild.setAttribute("aria-label", "Close chat");
    ui.handover = el("p", "handover", "A person from our team will answer here.");
    ui.handover.setAttribute("role", "status");
    ui.log = el("div", "log");
    ui.log.setAttribute("role", "log"); // polite live region: new messages are read out
    ui.log.setAttribute("aria-label", "Conversation");
    ui.log.tabIndex = 0;
    ui.typing = el("p", "typing", "The assistant is typing\u2026");
    ui.panel.append(header, ui.handover, ui.log, ui.typing, form());
    ui.panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape") close();
    });
    root.append(ui.panel, ui.launcher);
    document.body.append(host);
  }

  function form() {
    var node = el("form", "compose");
    var label = el("label", "sr-only", "Message to the " + title.toLowerCase());
    label.htmlFor = "input";
    ui.input = el("input");
    ui.input.id = "input";
    ui.input.autocomplete = "off";
    ui.input.maxLength = 2000;
    ui.input.placeholder = "Ask me anything about the shop\u2026";
    ui.input.addEventListener("input", function () {
      state.draft = ui.input.value;
      save();
    });
    node.append(label, ui.input, el("button", "send", "Send"));
    node.addEventListener("submit", function (e) {
      e.preventDefault();
      var text = ui.input.value.trim();
      if (!text) return;
      ui.input.value = state.draft = "";
      say(text);
    });
    return node;
  }

  function render() {
    state.messages.forEach(function (m, i) {
      ui.log.append(view(m, i === state.messages.length - 1));
    });
    ui.input.value = state.draft || "";
    ui.panel.hidden = !state.open;
    ui.launcher.setAttribute("aria-expanded", String(state.open));
    setWithAgent(state.withAgent);
    typing(false);
    showBadge();
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  var started = false;
  function start() {
    // After the deferred scripts, so cdp.js (window.cdp) is there when it is used.
    if (started) return;
    started = true;
    load();
    build();
    render();
    poll();
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") poll();
    });
  }

  var STYLE = [
    ":host { all: initial; font: 14px/1.4 system-ui, sans-serif; color: #222; }",
    ".sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }",
    "button { font: inherit; cursor: pointer; }",
    "button:focus-visible, a:focus-visible, input:focus-visible, .log:focus-visible { outline: 2px solid #1979c3; outline-offset: 2px; }",
    ".launcher { position: fixed; right: 1rem; bottom: 1rem; z-index: 2147483000; border: 0; border-radius: 2rem; padding: .8rem 1.2rem; background: #1979c3; color: #fff; box-shadow: 0 2px 8px #0004; }",
    ".badge { display: inline-block; min-width: 1.2rem; margin-left: .4rem; border-radius: 1rem; background: #e02b27; font-size: .75rem; line-height: 1.2rem; text-align: center; }",
    ".badge[hidden] { display: none; }",
    ".panel { position: fixed; right: 1rem; bottom: 4.5rem; z-index: 2147483000; display: flex; flex-direction: column; width: min(23rem, calc(100vw - 2rem)); height: min(34rem, calc(100vh - 6rem)); background: #fff; border: 1px solid #ccc; border-radius: 10px; box-shadow: 0 4px 16px #0003; }",
    ".panel[hidden] { display: none; }",
    "header { display: flex; align-items: center; justify-content: space-between; padding: .5rem .8rem; border-bottom: 1px solid #eee; }",
    "h2 { margin: 0; font-size: 1rem; }",
    ".close { border: 0; background: none; font-size: 1.4rem; line-height: 1; }",
    ".handover { margin: 0; padding: .4rem .8rem; background: #fff7d6; font-size: .85rem; }",
    ".handover[hidden], .typing[hidden] { display: none; }",
    ".log { flex: 1; overflow-y: auto; padding: .6rem .8rem; }",
    ".msg { margin: .4rem 0; }",
    ".msg .text { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }",
    ".shopper { text-align: right; }",
    ".shopper .text { display: inline-block; padding: .4rem .6rem; border-radius: 10px; background: #1979c3; color: #fff; text-align: left; }",
    ".shopper.sending .text { opacity: .7; }",
    ".shopper.failed .text { background: #8a99a8; }",
    ".assistant .text, .agent .text { display: inline-block; padding: .4rem .6rem; border-radius: 10px; background: #f1f3f5; }",
    ".notice .text { color: #555; font-size: .85rem; font-style: italic; }",
    ".failure { margin-top: .2rem; font-size: .8rem; color: #a33; }",
    ".resend { margin-left: .4rem; border: 1px solid #a33; border-radius: 6px; background: #fff; color: #a33; }",
    ".buttons, .quick { display: flex; flex-wrap: wrap; gap: .3rem; margin-top: .4rem; }",
    ".choice { border: 1px solid #1979c3; border-radius: 6px; background: #fff; color: #1979c3; padding: .3rem .6rem; }",
    ".chip { border: 1px solid #1979c3; border-radius: 1rem; background: #eef6fc; color: #1979c3; padding: .2rem .7rem; }",
    ".cards { display: flex; gap: .5rem; overflow-x: auto; margin-top: .4rem; padding-bottom: .3rem; }",
    ".card { flex: 0 0 9.5rem; display: flex; flex-direction: column; gap: .2rem; border: 1px solid #ddd; border-radius: 8px; padding: .5rem; }",
    ".picture { display: block; width: 100%; height: 6rem; object-fit: cover; border-radius: 6px; background: #f1f3f5; }",
    ".picture.none { display: flex; align-items: center; justify-content: center; font-size: 2rem; color: #8a99a8; }",
    ".name { font-weight: 600; color: #1979c3; }",
    ".price { color: #333; }",
    ".actions { display: flex; gap: .3rem; margin-top: auto; }",
    ".add { flex: 1; border: 0; border-radius: 6px; background: #1979c3; color: #fff; padding: .3rem; }",
    ".ask { border: 1px solid #ccc; border-radius: 6px; background: #fff; padding: .3rem; }",
    ".typing { margin: 0; padding: 0 .8rem .3rem; color: #666; font-size: .8rem; }",
    ".compose { display: flex; border-top: 1px solid #eee; }",
    ".compose input { flex: 1; min-width: 0; border: 0; padding: .7rem .8rem; font: inherit; }",
    ".send { border: 0; background: none; color: #1979c3; font-weight: 600; padding: 0 .9rem; }",
  ].join("\n");

  window.cdpChat = {
    open: function () { if (started) open(true); },
    close: function () { if (started) close(); },
  };
  if (document.readyState === "complete") start();
  else {
    document.addEventListener("DOMContentLoaded", start);
    window.addEventListener("load", start);
  }
})();
