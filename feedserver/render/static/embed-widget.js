/* feedserver headline widget: one shared body for every channel.
 *
 * Each /embed/<channel>.js is a tiny loader that queues {script, channel, feed} on
 * window.feedserverEmbed and loads this file once.  For each queued script tag it
 * fetches the channel's JSON Feed (CORS) and renders linked headlines, with a date
 * and an optional summary, after the tag or into data-target.
 *
 * Rules it keeps for the host page's sake: feed data only ever goes through
 * textContent and setAttribute (never HTML parsing), links must be http(s), the
 * styles are zero-specificity rules (:where) over class names and CSS custom
 * properties the host can override, and nothing throws: any failure becomes a
 * small "feed unavailable" text.
 *
 * Attributes on the <script> tag: data-limit (1-50, default 5), data-summary
 * (show summaries unless "false"/"0"/"no"/"off"), data-target (CSS selector of an
 * element whose content is replaced), data-lang (BCP 47 tag for dates; default:
 * the host page's lang, then the feed's language), data-images (a thumbnail of each
 * item's JSON Feed image, unless "false"/"0"/"no"/"off").
 */
(function (w, d) {
  "use strict";
  var NAME = "feedserver-embed";
  var STYLE_ID = NAME + "-style";
  var DEFAULT_LIMIT = 5;
  var MAX_LIMIT = 50;
  var STYLE = [
    ":where(." + NAME + "){font:var(--feedserver-font,inherit);" +
      "color:var(--feedserver-color,inherit)}",
    ":where(." + NAME + "__list){list-style:none;margin:0;padding:0}",
    ":where(." + NAME + "__item){margin:0 0 var(--feedserver-gap,.6em)}",
    ":where(." + NAME + "__link){color:var(--feedserver-link-color,inherit);" +
      "font-weight:var(--feedserver-link-weight,600)}",
    ":where(." + NAME + "__date){display:block;font-size:var(--feedserver-date-size,.85em);" +
      "color:var(--feedserver-muted-color,GrayText)}",
    ":where(." + NAME + "__image){float:left;width:3em;height:3em;object-fit:cover;" +
      "margin:0 .5em .2em 0}",
    ":where(." + NAME + "__summary){margin:.2em 0 0;font-size:var(--feedserver-summary-size,.95em)}",
    ":where(." + NAME + "__unavailable){margin:0;font-style:italic;" +
      "color:var(--feedserver-muted-color,GrayText)}"
  ].join("\n");

  function element(tag, suffix, text) {
    var node = d.createElement(tag);
    node.className = suffix ? NAME + "__" + suffix : NAME;
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function addStyle() {
    if (d.getElementById(STYLE_ID) || w.feedserverEmbedStyled) {
      return;
    }
    w.feedserverEmbedStyled = true;
    /* A constructed sheet is not inline markup, so a host page whose CSP forbids
       inline styles still gets it, without a CSP report in its console. */
    if (w.CSSStyleSheet && "adoptedStyleSheets" in d) {
      try {
        var sheet = new w.CSSStyleSheet();
        sheet.replaceSync(STYLE);
        d.adoptedStyleSheets = [sheet].concat(Array.prototype.slice.call(d.adoptedStyleSheets));
        return;
      } catch (e) {
        /* Fall back to a <style> element. */
      }
    }
    var style = d.createElement("style");
    style.id = STYLE_ID;
    style.textContent = STYLE;
    var head = d.head || d.documentElement;
    head.insertBefore(style, head.firstChild);
  }

  function option(script, name) {
    return script && script.getAttribute ? script.getAttribute("data-" + name) : null;
  }

  function limitOf(script) {
    var n = parseInt(option(script, "limit"), 10);
    return n > 0 ? Math.min(n, MAX_LIMIT) : DEFAULT_LIMIT;
  }

  function wantsSummary(script) {
    var value = option(script, "summary");
    return value !== null && !/^(false|0|no|off)$/i.test(value);
  }

  function findScript(entry) {
    if (entry.script) {
      return entry.script;
    }
    /* Without document.currentScript: the first unclaimed tag of this channel. */
    var tags = d.getElementsByTagName("script");
    var tail = "/embed/" + entry.channel + ".js";
    for (var i = 0; i < tags.length; i++) {
      var src = (tags[i].getAttribute("src") || "").split(/[?#]/)[0];
      if (src.slice(-tail.length) === tail && !tags[i].hasAttribute("data-feedserver-claimed")) {
        return tags[i];
      }
    }
    return null;
  }

  function container(script, channel) {
    var selector = option(script, "target");
    var host = null;
    if (selector) {
      try {
        host = d.querySelector(selector);
      } catch (e) {
        host = null;
      }
    }
    var box = element("div");
    box.setAttribute("data-channel", channel);
    if (host) {
      host.textContent = "";
      host.appendChild(box);
    } else if (script && script.parentNode) {
      script.parentNode.insertBefore(box, script.nextSibling);
    } else {
      return null;
    }
    return box;
  }

  function dateFormat(lang) {
    var style = {year: "numeric", month: "short", day: "numeric"};
    try {
      return new Intl.DateTimeFormat(lang || undefined, style);
    } catch (e) {
      return new Intl.DateTimeFormat(undefined, style);
    }
  }

  function webUrl(value, base) {
    try {
      var url = new URL(String(value), base);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function wantsImages(script) {
    var value = option(script, "images");
    return value !== null && !/^(false|0|no|off)$/i.test(value);
  }

  function thumbnail(item, base) {
    var image = item.image || item.banner_image;
    var src = image ? webUrl(image, base) : null;
    if (!src) {
      return null;
    }
    var img = element("img", "image");
    img.setAttribute("src", src);
    img.setAttribute("alt", "");
    img.setAttribute("loading", "lazy");
    return img;
  }

  function headline(item, base, format, summary, images) {
    var li = element("li", "item");
    var picture = images ? thumbnail(item, base) : null;
    if (picture) {
      li.appendChild(picture);
    }
    var href = webUrl(item.url || item.external_url || "", base);
    var title = String(item.title || item.summary || href || "");
    var link = element(href ? "a" : "span", "link", title);
    if (href) {
      link.setAttribute("href", href);
    }
    li.appendChild(link);
    var when = new Date(item.date_published || item.date_modified || NaN);
    if (!isNaN(when.getTime())) {
      var time = element("time", "date", format.format(when));
      time.setAttribute("datetime", when.toISOString());
      li.appendChild(time);
    }
    if (summary && item.summary) {
      li.appendChild(element("p", "summary", String(item.summary)));
    }
    return li;
  }

  function render(box, script, feed, url) {
    if (!feed || !Array.isArray(feed.items)) {
      throw new Error("not a JSON Feed");
    }
    var lang = option(script, "lang") || d.documentElement.lang || feed.language;
    var format = dateFormat(lang);
    var list = element("ul", "list");
    var items = feed.items.slice(0, limitOf(script));
    for (var i = 0; i < items.length; i++) {
      list.appendChild(headline(items[i] || {}, url, format, wantsSummary(script),
                                wantsImages(script)));
    }
    box.textContent = "";
    box.appendChild(list);
    box.removeAttribute("aria-busy");
  }

  function unavailable(box) {
    try {
      box.textContent = "";
      box.className = NAME + " " + NAME + "--unavailable";
      box.removeAttribute("aria-busy");
      box.appendChild(element("p", "unavailable", "feed unavailable"));
    } catch (e) {
      /* Never into the host page. */
    }
  }

  function show(entry) {
    var box = null;
    try {
      var script = findScript(entry || {});
      if (script) {
        script.setAttribute("data-feedserver-claimed", "");
      }
      box = container(script, String(entry.channel || ""));
      if (!box) {
        return;
      }
      addStyle();
      if (!entry.feed || !w.fetch) {
        unavailable(box);
        return;
      }
      box.setAttribute("aria-busy", "true");
      w.fetch(entry.feed, {credentials: "omit", headers: {Accept: "application/feed+json"}})
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (feed) {
          render(box, script, feed, entry.feed);
        })
        .catch(function () {
          unavailable(box);
        });
    } catch (e) {
      if (box) {
        unavailable(box);
      }
    }
  }

  var queued = w.feedserverEmbed;
  w.feedserverEmbed = {push: show, loading: true};
  if (queued && queued.length) {
    for (var i = 0; i < queued.length; i++) {
      show(queued[i]);
    }
  }
})(window, document);
