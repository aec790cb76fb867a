/* {{ (site_title ~ " headline widget" ~ (": " ~ name if name else "")) | js_comment }}. Usage:
   <script src="{{ self_url | js_comment }}" data-limit="5" async></script>
   Options: data-limit, data-summary, data-target (CSS selector), data-lang. */
(function (w, d, s) {
  try {
    var q = w.feedserverEmbed = w.feedserverEmbed || [];
    q.push({script: s, channel: {{ channel | tojson }}, feed: {{ feed | tojson }}});
    if (q.loading) {
      return;
    }
    q.loading = true;
    var e = d.createElement("script");
    e.src = {{ widget_url | tojson }};
    e.async = true;
    e.onerror = function () {
      for (var i = 0; i < q.length; i++) {
        var t = q[i].script, p = d.createElement("p");
        p.className = "feedserver-embed feedserver-embed--unavailable";
        p.textContent = "feed unavailable";
        if (t && t.parentNode) {
          t.parentNode.insertBefore(p, t.nextSibling);
        }
      }
    };
    (d.head || d.documentElement).appendChild(e);
  } catch (x) {
    /* A widget never breaks the page that embeds it. */
  }
})(window, document, document.currentScript);
