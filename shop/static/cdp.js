/* cdp.js: the website tracker, served by the api and embedded with one tag:
 *
 *   <script src="https://cdp.example.com/static/cdp.js" data-write-key="KEY" defer>
 *   </script>
 *
 * It sends a page view on load and offers cdp.page, cdp.track and cdp.identify, which
 * return a Promise that resolves to true once the api accepted the event (false if it
 * refused it). Events go to the Segment-compatible /v1/batch in batches: after
 * data-flush-interval ms (default 1000) or at data-flush-at events (default 20).
 *
 * Delivery is at least once; the worker stores an event once per messageId.
 * - Unsent events are kept in localStorage, so the next page sends what this one
 *   could not.
 * - Network errors, 5xx and 429 are retried with exponential backoff; any other 4xx
 *   is final (sending the same request again would be refused again).
 * - When the page is hidden or left, what is queued goes out with sendBeacon. A
 *   beacon's fate is unknown, so its events stay stored until a request is answered.
 * - The write key travels in the body (sendBeacon cannot set a header) and bodies are
 *   text/plain, which keeps a cross-origin request free of a CORS preflight.
 *
 * Consent: with data-consent-required="true" nothing is sent, stored or set as a
 * cookie until cdp.consent.grant(); events of the page are held in memory until then.
 * cdp.consent.revoke() drops what is held and forgets the visitor's ids. Either
 * decision is remembered in localStorage.
 *
 * Slots: every <div data-cdp-slot="home"> (data-cdp-sku="..." for the product on the
 * page) is filled on load from /v1/personalize, with an impression id of its own for
 * this page view: filling it again (cdp.fillSlots()) counts nothing twice, the next
 * page view is a new impression. Control, no campaign or an error leave the element
 * as the shop wrote it. A click on a [data-cdp-click] link inside the content is
 * tracked as Promotion Clicked, through the queue above, so it survives the page
 * change the link starts.
 */
(function () {
  "use strict";
  var VERSION = "1.0.0";
  var script = document.currentScript ||
    document.querySelector("script[data-write-key][src*='cdp.js']");
  var writeKey = (script && script.getAttribute("data-write-key")) || "";
  var scriptOrigin = script ? new URL(script.src, location.href).origin : "";
  var apiHost = option("data-api-host", scriptOrigin);
  var flushInterval = Number(option("data-flush-interval", 1000));
  var flushAt = Number(option("data-flush-at", 20));
  var consentRequired = option("data-consent-required", "false") === "true";

  var COOKIE = "cdp_aid";
  var QUEUE_KEY = "cdp_queue:" + writeKey;
  var USER_KEY = "cdp_uid:" + writeKey;
  var CONSENT_KEY = "cdp_consent:" + writeKey;
  var MAX_QUEUE = 1000;          // oldest events are dropped past this
  var MAX_REQUEST_BYTES = 60000; // keepalive requests and beacons share 64 KB
  var BACKOFF_BASE_MS = 500;
  var BACKOFF_MAX_MS = 60000;

  var consent = storageGet(CONSENT_KEY) || (consentRequired ? "pending" : "granted");
  var queue = [];     // events this page is responsible for, oldest first
  var waiting = {};   // messageId -> resolve of the Promise the caller holds
  var beaconed = {};  // messageId -> true once handed to sendBeacon
  var sending = null; // the Promise of the request in flight
  var flying = {};    // messageId -> true while in that request
  var timer = null;
  var failures = 0;
  var visitorId = null;
  var userId = null;

  function option(name, fallback) {
    var value = script && script.getAttribute(name);
    return value === null || value === undefined || value === "" ? fallback : value;
  }

  function granted() { return consent === "granted"; }

  function storageGet(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }

  function storageSet(key, value) {
    try {
      if (value === null) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, value);
    } catch (e) { /* storage full or disabled: the page still sends what it can */ }
  }

  // The stored queue is shared by every tab of the site: read, change and write it
  // back in one step instead of overwriting it with this page's view.
  function storedQueue() {
    try { return JSON.parse(storageGet(QUEUE_KEY) || "[]"); } catch (e) { return []; }
  }

  function storeAdd(messages) {
    if (!granted()) return;
    var kept = storedQueue().concat(messages).slice(-MAX_QUEUE);
    storageSet(QUEUE_KEY, JSON.stringify(kept));
  }

  function storeRemove(ids) {
    var kept = storedQueue().filter(function (m) { return !ids[m.messageId]; });
    storageSet(QUEUE_KEY, kept.length ? JSON.stringify(kept) : null);
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

  function writeCookie(name, value, maxAge) {
    var secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=" +
      maxAge + "; SameSite=Lax" + secure;
  }

  function anonymousId() {
    if (!visitorId) visitorId = readCookie(COOKIE) || uuid();
    if (granted() && readCookie(COOKIE) !== visitorId) {
      writeCookie(COOKIE, visitorId, 365 * 24 * 3600);
    }
    return visitorId;
  }

  function pageInfo() {
    return { path: location.pathname, url: location.href, search: location.search,
             title: document.title, referrer: document.referrer };
  }

  function message(type, fields) {
    var event = {
      type: type, messageId: uuid(), timestamp: new Date().toISOString(),
      anonymousId: anonymousId(),
      context: { library: { name: "cdp.js", version: VERSION }, page: pageInfo(),
                 userAgent: navigator.userAgent, locale: navigator.language },
    };
    if (userId) event.userId = userId;
    return Object.assign(event, fields);
  }

  function enqueue(event) {
    if (consent === "revoked") return Promise.resolve(false);
    return new Promise(function (resolve) {
      waiting[event.messageId] = resolve;
      queue.push(event);
      if (queue.length > MAX_QUEUE) {
        settle(queue.slice(0, queue.length - MAX_QUEUE), {}); // given up: oldest
      }
      storeAdd([event]);
      schedule();
    });
  }

  // Done with these events: delivered (their messageId in `delivered`) or given up.
  function settle(events, delivered) {
    var ids = {};
    events.forEach(function (e) {
      ids[e.messageId] = true;
      delete beaconed[e.messageId];
      if (waiting[e.messageId]) waiting[e.messageId](delivered[e.messageId] === true);
      delete waiting[e.messageId];
    });
    queue = queue.filter(function (e) { return !ids[e.messageId]; });
    storeRemove(ids);
  }

  function schedule() {
    if (!granted() || sending || timer || !queue.length) return;
    timer = setTimeout(send, queue.length >= flushAt ? 0 : flushInterval);
  }

  function retryLater(retryAfterSeconds) {
    failures += 1;
    var delay = Math.min(BACKOFF_BASE_MS * Math.pow(2, failures - 1), BACKOFF_MAX_MS);
    delay *= 0.8 + 0.4 * Math.random(); // spread the retries of many visitors
    delay = Math.max(delay, (retryAfterSeconds || 0) * 1000);
    timer = setTimeout(send, delay);
  }

  function nextBatch(events) {
    var batch = [];
    var size = 0;
    for (var i = 0; i < events.length && batch.length < flushAt; i++) {
      size += JSON.stringify(events[i]).length;
      if (batch.length && size > MAX_REQUEST_BYTES) break;
      batch.push(events[i]);
    }
    return batch;
  }

  function body(batch) {
    var sentAt = new Date().toISOString();
    return JSON.stringify({ batch: batch, sentAt: sentAt, writeKey: writeKey });
  }

  function post(batch) {
    return fetch(apiHost + "/v1/batch", {
      method: "POST", headers: { "Content-Type": "text/plain" }, body: body(batch),
      keepalive: true, credentials: "omit",
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        return { status: response.status, answer: answer,
                 retryAfter: Number(response.headers.get("Retry-After")) || 0 };
      });
    }, function () { return { status: 0 }; });
  }

  function accepted(batch, answer) {
    var refused = {};
    ((answer && answer.rejected) || []).forEach(function (r) {
      refused[r.index] = true;
    });
    var delivered = {};
    batch.forEach(function (e, i) { if (!refused[i]) delivered[e.messageId] = true; });
    return delivered;
  }

  // cdp.flush(): send now rather than at the end of the interval, but never sooner
  // than a retry that is waiting out its backoff.
  function flush() {
    if (sending) return sending.then(flush);
    return failures ? Promise.resolve() : send();
  }

  function send() {
    clearTimeout(timer);
    timer = null;
    if (!granted() || !queue.length) return Promise.resolve();
    var batch = nextBatch(queue);
    batch.forEach(function (e) { flying[e.messageId] = true; });
    sending = post(batch).then(function (result) {
      sending = null;
      flying = {};
      var status = result.status;
      if (status === 0 || status === 429 || status >= 500) {
        retryLater(result.retryAfter);
        return;
      }
      failures = 0;
      if (status >= 400) {
        console.warn("cdp.js: the api refused " + batch.length + " events: " + status);
      }
      settle(batch, status < 300 ? accepted(batch, result.answer) : {});
      schedule();
    });
    return sending;
  }

  function beaconQueued() {
    if (!granted() || !navigator.sendBeacon) return;
    // A request in flight was sent with keepalive: it outlives the page.
    var unsent = queue.filter(function (e) {
      return !beaconed[e.messageId] && !flying[e.messageId];
    });
    while (unsent.length) {
      var batch = nextBatch(unsent);
      unsent = unsent.slice(batch.length);
      if (!navigator.sendBeacon(apiHost + "/v1/batch", body(batch))) return;
      batch.forEach(function (e) { beaconed[e.messageId] = true; });
    }
  }

  window.addEventListener("pagehide", beaconQueued);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") beaconQueued();
  });

  var impressions = new WeakMap(); // slot element -> its impression id, this page view
  var shown = new WeakMap();       // slot element -> what it shows: campaign, variant

  function fillSlots(root) {
    if (!granted()) return Promise.resolve([]);
    var slots = (root || document).querySelectorAll("[data-cdp-slot]");
    return Promise.all(Array.prototype.map.call(slots, fillSlot));
  }

  // What /v1/personalize answered (null after an error or for an unknown visitor);
  // the slot shows its html unless it is none or the profile is in the control group.
  function fillSlot(slot) {
    var name = slot.getAttribute("data-cdp-slot");
    if (!impressions.has(slot)) impressions.set(slot, uuid());
    return Promise.resolve().then(function () {
      var query = new URLSearchParams({
        profile: "anonymous_id:" + anonymousId(), slot: name,
        impression_id: impressions.get(slot),
      });
      var sku = slot.getAttribute("data-cdp-sku");
      if (sku) query.set("sku", sku);
      var auth = "Basic " + btoa(writeKey + ":");
      return fetch(apiHost + "/v1/personalize?" + query, {
        headers: { Authorization: auth }, credentials: "omit",
      });
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.ok) return answer;
        throw new Error("the api answered " + response.status + " " +
                        errorType(answer));
      });
    }).then(function (answer) {
      if (!answer || answer.control || !answer.html) return answer;
      slot.innerHTML = answer.html; // rendered by the api: sandboxed and autoescaped
      slot.setAttribute("data-cdp-campaign", answer.campaign);
      slot.setAttribute("data-cdp-variant", answer.variant);
      shown.set(slot, answer);
      return answer;
    }).catch(function (error) {
      console.warn("cdp.js: slot " + name + " keeps its content: " + error.message);
      return null;
    });
  }

  function errorType(answer) {
    var detail = answer && Array.isArray(answer.detail) && answer.detail[0];
    return (detail && detail.type) || "";
  }

  // Capture, so that a shop's handler stopping the click does not lose it.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-cdp-click]");
    var slot = link && link.closest("[data-cdp-slot]");
    var answer = slot && shown.get(slot);
    if (!answer) return;
    window.cdp.track("Promotion Clicked", {
      promotion_id: answer.impression_id, content_id: answer.impression_id,
      campaign: answer.campaign, variant: answer.variant, slot: answer.slot,
      url: link.href || null,
    });
    flush(); // a keepalive request outlives the page; pagehide beacons the rest
  }, true);

  function grant() {
    if (consent === "granted") return;
    consent = "granted";
    storageSet(CONSENT_KEY, "granted");
    anonymousId();
    if (userId) storageSet(USER_KEY, userId);
    storeAdd(queue);
    schedule();
  }

  function revoke() {
    consent = "revoked";
    clearTimeout(timer);
    timer = null;
    failures = 0;
    settle(queue.slice(), {});
    storageSet(QUEUE_KEY, null);
    storageSet(USER_KEY, null);
    storageSet(CONSENT_KEY, "revoked");
    writeCookie(COOKIE, "", 0);
    visitorId = null;
    userId = null;
  }

  window.cdp = {
    writeKey: writeKey,
    version: VERSION,
    anonymousId: anonymousId,
    page: function (name, properties) {
      var fields = { properties: Object.assign(pageInfo(), properties || {}) };
      if (name) fields.name = name;
      return enqueue(message("page", fields));
    },
    track: function (event, properties) {
      return enqueue(message("track", { event: event, properties: properties || {} }));
    },
    identify: function (id, traits) {
      if (id !== undefined && id !== null && consent !== "revoked") {
        userId = String(id);
        if (granted()) storageSet(USER_KEY, userId);
      }
      return enqueue(message("identify", { traits: traits || {} }));
    },
    flush: flush,
    fillSlots: fillSlots,
    consent: { grant: grant, revoke: revoke, status: function () { return consent; } },
  };

  if (granted()) {
    userId = storageGet(USER_KEY);
    queue = storedQueue(); // left by earlier pages: this page sends them
    anonymousId();
  }
  window.cdp.page(document.title);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { fillSlots(); });
  } else {
    fillSlots();
  }
})();
