"""Combined (``topics/a,b``, ``topics/a+b``) and filtered (``?limit=&q=&since=&lang=``)
channels, computed from the item records the build published (:mod:`.records`).

Pure: the web app (:mod:`feedserver.web.filtered`) reads the files and imports this
package lazily, only for a request with a query string or a combined path, so a
plain feed request and a worker's memory never pay for the renderers it loads.
"""
