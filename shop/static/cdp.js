/* Minimal tracker for the walking skeleton: an anonymous id in a first-party cookie,
 * automatic page views, and cdp.track / cdp.identify sent to the Segment-compatible
 * API. Issue #3 grows this into the full tracker (batching, retries, consent). */
(function () {
  "use strict";
  var script = document.currentScript;
  var writeKey = script ? script.getAttribute("data-write-key") : "";
  var COOKIE = "cdp_aid";

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 0x3) | 0x8).toString(16);
    });
  }

  function anonymousId() {
    var match = document.cookie.match(new RegExp("(?:^|; )" + COOKIE + "=([^;]+)"));
    if (match) return decodeURIComponent(match[1]);
    var id = uuid();
    document.cookie = COOKIE + "=" + id + "; path=/; max-age=31536000; SameSite=Lax";
    return id;
  }

  function send(type, fields) {
    var now = new Date().toISOString();
    var message = Object.assign(
      { type: type, anonymousId: anonymousId(), messageId: uuid(), timestamp: now,
        sentAt: now, context: { page: { url: location.href, path: location.pathname,
        title: document.title, referrer: document.referrer }, userAgent: navigator.userAgent } },
      fields
    );
    return fetch("/v1/" + type, {
      method: "POST",
      headers: { "Content-Type": "application/json",
                 "Authorization": "Basic " + btoa(writeKey + ":") },
      body: JSON.stringify(message),
      keepalive: true,
    });
  }

  window.cdp = {
    anonymousId: anonymousId,
    writeKey: writeKey,
    page: function (name, properties) { return send("page", { name: name, properties: properties || {} }); },
    track: function (event, properties) { return send("track", { event: event, properties: properties || {} }); },
    identify: function (userId, traits) { return send("identify", { userId: userId, traits: traits || {} }); },
  };
  window.cdp.page(document.title);
})();
