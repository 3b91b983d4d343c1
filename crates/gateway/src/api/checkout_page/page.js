// Live status of the hosted checkout page: polls the page's JSON status endpoint (no cookies),
// runs the expiry countdown on the server's clock, and sends the shopper to the merchant's
// success or cancel URL once the payment is final. Text comes from the server-rendered page;
// this script only ever sets textContent and attributes, never HTML.
(function () {
  "use strict";

  var root = document.getElementById("checkout");
  if (!root) {
    return;
  }
  var statusEl = document.getElementById("status");
  var countdownEl = document.getElementById("countdown");
  var returnLink = document.getElementById("return-link");
  var statusUrl = root.getAttribute("data-status-url");
  var pollMs = Number(root.getAttribute("data-poll-ms")) || 2000;
  var expiresAt = Number(root.getAttribute("data-expires-at"));
  // Seconds to add to this device's clock to get the gateway's.
  var skew = Number(root.getAttribute("data-now")) - Date.now() / 1000;
  var REDIRECT_DELAY_MS = 1200;
  var ERROR_BACKOFF_MS = 5000;
  var state = root.getAttribute("data-state") || "pending";
  var timer = null;
  var inFlight = false;

  function serverNow() {
    return Date.now() / 1000 + skew;
  }

  function two(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function renderCountdown() {
    if (!countdownEl) {
      return;
    }
    var left = Math.max(0, Math.floor(expiresAt - serverNow()));
    var h = Math.floor(left / 3600);
    var m = Math.floor((left % 3600) / 60);
    var s = left % 60;
    countdownEl.textContent = h > 0 ? h + ":" + two(m) + ":" + two(s) : m + ":" + two(s);
    countdownEl.setAttribute("datetime", "PT" + left + "S");
    if (left === 0 && state === "pending") {
      schedule(0);
    }
  }

  function say(key) {
    var text = statusEl && statusEl.getAttribute("data-msg-" + key);
    if (text && statusEl.textContent !== text) {
      statusEl.textContent = text;
    }
  }

  // Only absolute http(s) URLs are followed; the server already allowed this one.
  function safeUrl(candidate) {
    if (typeof candidate !== "string") {
      return null;
    }
    try {
      var url = new URL(candidate);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function finish(final, redirectUrl) {
    state = final;
    root.setAttribute("data-state", final);
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    var target = safeUrl(redirectUrl);
    say(target ? final : final + "-stay");
    if (returnLink) {
      if (target) {
        returnLink.href = target;
        returnLink.textContent = statusEl.getAttribute("data-label-continue");
        returnLink.hidden = false;
      } else {
        returnLink.hidden = true;
      }
    }
    if (target) {
      setTimeout(function () {
        window.location.replace(target);
      }, REDIRECT_DELAY_MS);
    }
  }

  function schedule(ms) {
    if (state !== "pending" && state !== "error") {
      return;
    }
    if (timer !== null) {
      clearTimeout(timer);
    }
    timer = setTimeout(poll, ms);
  }

  function poll() {
    timer = null;
    if (inFlight) {
      return;
    }
    inFlight = true;
    fetch(statusUrl, {
      cache: "no-store",
      credentials: "omit",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (body) {
        inFlight = false;
        if (typeof body.now === "number") {
          skew = body.now - Date.now() / 1000;
        }
        if (typeof body.expiresAt === "number") {
          expiresAt = body.expiresAt;
        }
        if (body.status === "paid" || body.status === "cancelled" || body.status === "expired") {
          finish(body.status, body.redirectUrl);
          return;
        }
        if (state === "error") {
          state = "pending";
          root.setAttribute("data-state", "pending");
          statusEl.textContent = statusEl.getAttribute("data-msg-pending") || statusEl.textContent;
        }
        schedule(pollMs);
      })
      .catch(function () {
        inFlight = false;
        state = "error";
        root.setAttribute("data-state", "error");
        say("error");
        schedule(ERROR_BACKOFF_MS);
      });
  }

  if (statusEl && !statusEl.hasAttribute("data-msg-pending")) {
    statusEl.setAttribute("data-msg-pending", statusEl.textContent);
  }
  renderCountdown();
  setInterval(renderCountdown, 1000);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      schedule(0);
    }
  });
  if (state === "pending") {
    schedule(pollMs);
  } else {
    // Already final when the page was rendered: ask once for the redirect target.
    state = "pending";
    schedule(0);
  }
})();
