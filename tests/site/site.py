#!/usr/bin/env python3
"""Local test web site for the Sixfold crawler's integration tests and benchmark.

Python 3 standard library only. One process serves several "hosts"; each host is one TCP port
on 127.0.0.1 (the crawler treats ``127.0.0.1:PORT`` as a distinct host), served by its own
``ThreadingHTTPServer`` (HTTP/1.1, keep-alive, ``Content-Length`` on every response).

Usage::

    python3 tests/site/site.py --mode test  --base-port 18300 --access-log FILE [--ready-file FILE]
    python3 tests/site/site.py --mode bench --base-port 19000 --hosts 200 --pages 500 \\
        --access-log FILE [--ready-file FILE]

``--ready-file`` is deleted at start-up and written (atomically, one base URL such as
``http://127.0.0.1:18300/`` per line) once every port listens. SIGTERM/SIGINT shut down cleanly.

Access log (``--access-log``, truncated at start-up): one JSON object per line, flushed per line,
for every request, written when the response is finished (or the client went away)::

    {"t": 1718000000.123, "host": "127.0.0.1:18300", "method": "GET", "path": "/a?x=1",
     "status": 200, "ua": "<User-Agent>", "bytes": 1234}

``t`` is ``time.time()`` when the request was read (before any deliberate delay), so lines may
be slightly out of ``t`` order; ``path`` is the request target as received; ``bytes`` counts body
bytes actually written (0 for HEAD, less than Content-Length if the client hung up).

--mode test: four hosts, H0..H3 = base-port+0..3, deterministic content
  H0  main site. robots.txt (``User-agent: *``, ``Disallow: /private/``,
      ``Allow: /private/ok.html``, ``Sitemap:``), link cycle, duplicates, redirect, slow page,
      12 MiB page, PDF, PNG, 20-deep chain, nofollow link, ``<base href>``, canonical, sitemap;
      ``/`` links to H1, H2 and H3, so seeding H0 ``/`` reaches every host.
      ``GET /__manifest`` (never linked) describes the site as JSON; see README.md.
  H1  robots.txt 404 (allow all); ``/limited`` answers 429 + ``Retry-After: 2`` to the first
      request of the process only, then 200.
  H2  robots.txt 500 (RFC 9309: disallow all); every other path is a 200 page that a correct
      crawler never requests.
  H3  robots.txt with ``Crawl-delay: 2``; ``/`` links ``/x1``, ``/x2``, ``/x3``.
  Unknown paths are 404 text/plain. Query strings are ignored for routing.

--mode bench: ``--hosts N`` hosts x ``--pages M`` pages
  Host i = base-port+i. robots.txt allows everything; ``/`` is a 302 to ``/p/0``; ``/p/K`` is
  4-8 KiB of HTML with 10 links inside the host (``K+1``, ``2K+1``, ``2K+2``, ``7K+1..7``, all
  mod M, so every page is within ~log2(M) hops of ``/p/0``) and 1-2 links to other hosts'
  ``/p/0`` (host ``2i+1`` or ``2i+2``, and ``i+1`` on every 5th page, all mod N).
"""

import argparse
import collections
import functools
import hashlib
import html
import json
import os
import random
import signal
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
XML = "application/xml"

HUGE_BYTES = 12 * 1024 * 1024
SLOW_SECONDS = 1.5
RETRY_AFTER_SECONDS = 2
CRAWL_DELAY_SECONDS = 2
DEEP_MAX = 20


# ---------------------------------------------------------------------------------------------
# Responses


@dataclass
class Page:
    """One response. HTML pages also keep the links they render, for the manifest."""

    status: int = 200
    content_type: str = HTML
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    stream_length: int = 0  # > 0: the body is produced by `stream()` instead of `body`
    stream: object = None
    links: list = field(default_factory=list)  # hrefs a crawler follows
    nofollow: list = field(default_factory=list)  # hrefs with rel="nofollow"
    base: str = None  # <base href>, if any

    @property
    def length(self):
        return self.stream_length if self.stream is not None else len(self.body)


def html_page(title, links=(), nofollow=(), base=None, canonical=None, text="A small page."):
    """A small HTML page that links `links` (and `nofollow` with rel="nofollow")."""
    head = [f"<title>{html.escape(title)}</title>"]
    if base:
        head.append(f'<base href="{html.escape(base)}">')
    if canonical:
        head.append(f'<link rel="canonical" href="{html.escape(canonical)}">')
    items = [f'<li><a href="{html.escape(h)}">{html.escape(h)}</a></li>' for h in links]
    items += [
        f'<li><a rel="nofollow" href="{html.escape(h)}">{html.escape(h)}</a></li>'
        for h in nofollow
    ]
    body = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        + "".join(head)
        + f"</head>\n<body><h1>{html.escape(title)}</h1>\n<p>{html.escape(text)}</p>\n"
        + "<ul>\n" + "\n".join(items) + "\n</ul>\n</body></html>\n"
    )
    return Page(body=body.encode(), links=list(links), nofollow=list(nofollow), base=base)


def text_page(text, status=200, headers=None):
    return Page(status=status, content_type=TEXT, body=text.encode(), headers=headers or {})


def not_found():
    return text_page("not found\n", status=404)


def redirect(location, status):
    return Page(
        status=status,
        content_type=TEXT,
        body=f"redirect to {location}\n".encode(),
        headers={"Location": location},
    )


def json_page(obj):
    return Page(content_type=JSON, body=(json.dumps(obj, indent=2) + "\n").encode())


def png_1x1():
    """A valid 1x1 grey PNG."""

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def huge_page(total):
    """An HTML page of exactly `total` bytes, streamed in 64 KiB chunks."""
    head = b"<!DOCTYPE html>\n<html><head><title>huge</title></head><body>\n"
    tail = b"</body></html>\n"
    line = b"<p>" + b"filler text to make this page very large " * 2 + b"</p>\n"
    chunk = (line * (65536 // len(line) + 1))[:65536]

    def stream():
        yield head
        remaining = total - len(head) - len(tail)
        while remaining > 0:
            piece = chunk[: min(remaining, len(chunk))]
            remaining -= len(piece)
            yield piece
        yield tail

    return Page(stream_length=total, stream=stream)


# ---------------------------------------------------------------------------------------------
# URL helpers (mirror the crawler's normalization closely enough for the manifest)

TRACKING_PARAMS = {
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "gclid", "fbclid",
}


def normalize(url):
    """Drop the fragment and tracking parameters, sort the rest; None for non-http(s) URLs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    params = sorted(p for p in parse_qsl(parts.query, keep_blank_values=True)
                    if p[0] not in TRACKING_PARAMS)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(params), ""))


def base_url(port):
    return f"http://127.0.0.1:{port}/"


# ---------------------------------------------------------------------------------------------
# --mode test


class TestSite:
    """Four hosts with fixed content; see the module docstring and README.md."""

    def __init__(self, base_port):
        self.ports = [base_port + i for i in range(4)]
        self.pages = {}  # (host index, path) -> Page
        self._limited_lock = threading.Lock()
        self._limited_hits = 0
        self._manifest = None
        self._build_h0()
        self._build_h1()
        self._build_h2()
        self._build_h3()

    def url(self, host, path):
        return f"http://127.0.0.1:{self.ports[host]}{path}"

    # -- content ------------------------------------------------------------------------------

    def _build_h0(self):
        p = self.pages
        p[0, "/robots.txt"] = text_page(
            "User-agent: *\nDisallow: /private/\nAllow: /private/ok.html\n\n"
            f"Sitemap: {self.url(0, '/sitemap.xml')}\n"
        )
        p[0, "/"] = html_page(
            "home",
            links=[
                "/a", "/b", "/private/secret.html", "/private/ok.html", "/cycle/1",
                "/dup1", "/dup2", "/file.pdf", "/image.png", "/redirect", "/slow", "/huge",
                "/deep/1", self.url(1, "/"), self.url(2, "/"), self.url(3, "/"),
                "/a#fragment", "/a?utm_source=x", "mailto:x@example.com", "javascript:void(0)",
            ],
            nofollow=["/nofollow-target"],
        )
        p[0, "/a"] = html_page("a", links=["/"], canonical="/a")
        p[0, "/b"] = html_page("b", links=["rel-from-base"], base="/base/")
        p[0, "/cycle/1"] = html_page("cycle 1", links=["/cycle/2"])
        p[0, "/cycle/2"] = html_page("cycle 2", links=["/cycle/1"])
        duplicate = html_page("duplicate", text="The same bytes under two URLs.")
        p[0, "/dup1"] = duplicate
        p[0, "/dup2"] = duplicate
        p[0, "/file.pdf"] = Page(content_type="application/pdf", body=MINIMAL_PDF)
        p[0, "/image.png"] = Page(content_type="image/png", body=png_1x1())
        p[0, "/redirect"] = redirect("/redirected", 301)
        p[0, "/slow"] = html_page("slow", text="Headers were delayed.")
        p[0, "/slow"].delay = SLOW_SECONDS
        p[0, "/huge"] = huge_page(HUGE_BYTES)
        for n in range(1, DEEP_MAX + 1):
            links = [f"/deep/{n + 1}"] if n < DEEP_MAX else []
            p[0, f"/deep/{n}"] = html_page(f"deep {n}", links=links)
        p[0, "/sitemap.xml"] = self._sitemap(["/from-sitemap", "/a"])
        for path in ("/from-sitemap", "/redirected", "/base/rel-from-base", "/private/ok.html",
                     "/nofollow-target", "/private/secret.html"):
            p[0, path] = html_page(path.strip("/"))

    def _sitemap(self, paths):
        entries = "".join(f"  <url><loc>{self.url(0, path)}</loc></url>\n" for path in paths)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
                + entries + "</urlset>\n")
        return Page(content_type=XML, body=body.encode())

    def _build_h1(self):
        p = self.pages
        p[1, "/robots.txt"] = not_found()
        p[1, "/"] = html_page(
            "host 1", links=[self.url(0, "/a"), "/limited", "/p1", "/p2", "/p3"])
        p[1, "/limited"] = html_page("limited", text="Rate limited once, then served.")
        for path in ("/p1", "/p2", "/p3"):
            p[1, path] = html_page(f"host 1 {path}")

    def _build_h2(self):
        self.pages[2, "/robots.txt"] = text_page("robots unavailable\n", status=500)

    def _build_h3(self):
        p = self.pages
        p[3, "/robots.txt"] = text_page(f"User-agent: *\nCrawl-delay: {CRAWL_DELAY_SECONDS}\n")
        p[3, "/"] = html_page("host 3", links=["/x1", "/x2", "/x3"])
        for path in ("/x1", "/x2", "/x3"):
            p[3, path] = html_page(f"host 3 {path}")

    # -- routing ------------------------------------------------------------------------------

    def route(self, host, path):
        if host == 0 and path == "/__manifest":
            return json_page(self.manifest())
        if host == 1 and path == "/limited" and self._first_limited_hit():
            return text_page("slow down\n", status=429,
                             headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        page = self.pages.get((host, path))
        if page is not None:
            return page
        if host == 2:
            return html_page(f"host 2 {path}", text="A correct crawler never fetches this.")
        return not_found()

    def _first_limited_hit(self):
        with self._limited_lock:
            self._limited_hits += 1
            return self._limited_hits == 1

    # -- manifest -----------------------------------------------------------------------------

    def is_disallowed(self, url):
        """Whether robots.txt forbids `url` to user-agent `*` (hard-coded for this site)."""
        parts = urlsplit(url)
        if parts.port == self.ports[2]:
            return True
        return (parts.port == self.ports[0] and parts.path.startswith("/private/")
                and parts.path != "/private/ok.html")

    def page_at(self, url):
        parts = urlsplit(url)
        if parts.port not in self.ports:
            return None
        return self.pages.get((self.ports.index(parts.port), parts.path or "/"))

    def outlinks(self, url, page, aliases):
        """(followed, nofollow) normalized absolute URLs found on `page` served at `url`."""
        base = urljoin(url, page.base) if page.base else url

        def resolve(hrefs):
            found = []
            for href in hrefs:
                raw = urljoin(base, href)
                norm = normalize(raw)
                if norm is None:
                    continue
                if norm != raw:
                    aliases[raw] = norm
                found.append(norm)
            return found

        return resolve(page.links), resolve(page.nofollow)

    def manifest(self):
        if self._manifest is None:
            self._manifest = self._build_manifest()
        return self._manifest

    def _build_manifest(self):
        depth, via, disallowed, nofollow, aliases = self._walk_links()
        sitemap = [self.url(0, "/from-sitemap"), self.url(0, "/a")]
        for url in sitemap:
            depth.setdefault(url, None)
            via.setdefault(url, set()).add("sitemap")
        pages = {url: self._page_entry(url, depth[url], via[url]) for url in depth}
        never = sorted(disallowed | {u for u in nofollow if u not in pages})
        return {
            "mode": "test",
            "hosts": [base_url(port) for port in self.ports],
            "pages": pages,
            "disallowed": sorted(disallowed),
            "never": never,
            "never_hosts": [base_url(self.ports[2])],
            "aliases": aliases,
            "duplicates": self._duplicates(pages),
            "sitemap": sitemap,
            "crawl_delay": {base_url(self.ports[3]): CRAWL_DELAY_SECONDS},
            "rate_limited": {self.url(1, "/limited"): RETRY_AFTER_SECONDS},
            "robots_status": {base_url(port): self.pages[i, "/robots.txt"].status
                              for i, port in enumerate(self.ports)},
        }

    def _walk_links(self):
        """Breadth-first walk from H0 `/`: links add 1 to the depth, redirects add 0."""
        root = self.url(0, "/")
        depth, via = {root: 0}, {root: {"seed"}}
        disallowed, nofollow, aliases = set(), set(), {}
        queue = collections.deque([root])
        while queue:
            url = queue.popleft()
            page = self.page_at(url)
            if page is None:
                continue
            if page.status in (301, 302, 303, 307, 308):
                edges = [(normalize(urljoin(url, page.headers["Location"])), 0, "redirect")]
            else:
                followed, skipped = self.outlinks(url, page, aliases)
                nofollow.update(skipped)
                edges = [(target, 1, "link") for target in followed]
            for target, step, kind in edges:
                if self.is_disallowed(target):
                    disallowed.add(target)
                    continue
                via.setdefault(target, set()).add(kind)
                if target not in depth:
                    depth[target] = depth[url] + step
                    (queue.appendleft if step == 0 else queue.append)(target)
        return depth, via, disallowed, nofollow, aliases

    def _page_entry(self, url, depth, via):
        page = self.page_at(url)
        entry = {"linked_depth": depth, "via": sorted(via), "status": page.status,
                 "content_type": page.content_type, "bytes": page.length}
        if "Location" in page.headers:
            entry["redirect_to"] = normalize(urljoin(url, page.headers["Location"]))
        return entry

    def _duplicates(self, pages):
        groups = collections.defaultdict(list)
        for url in pages:
            page = self.page_at(url)
            if page.status == 200 and page.stream is None:
                groups[hashlib.sha256(page.body).hexdigest()].append(url)
        return [sorted(urls) for urls in groups.values() if len(urls) > 1]


# ---------------------------------------------------------------------------------------------
# --mode bench

WORDS = (
    "stream kafka partition offset broker consumer producer crawler frontier politeness "
    "robots sitemap ledger timeline shard replica commit batch window latency throughput "
    "schema registry record header payload retry backoff queue worker fetch parse link"
).split()


def filler_paragraphs(count=64, seed=6):
    """`count` deterministic paragraphs of 200-600 bytes, rendered once."""
    rng = random.Random(seed)
    paragraphs = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(25, 80))]
        paragraphs.append(f"<p>{' '.join(words)}.</p>\n".encode())
    return paragraphs


class BenchSite:
    """`hosts` x `pages` generated pages; rendering is cached in a bounded LRU."""

    CACHE_PAGES = 4096  # a full cache would be hosts*pages*~6 KiB (~600 MB for 200x500)

    def __init__(self, base_port, hosts, pages):
        self.ports = [base_port + i for i in range(hosts)]
        self.page_count = pages
        self.filler = filler_paragraphs()
        self.render = functools.lru_cache(maxsize=self.CACHE_PAGES)(self._render)
        self.robots = text_page("User-agent: *\nAllow: /\n")

    def route(self, host, path):
        if path == "/robots.txt":
            return self.robots
        if path == "/":
            return redirect(f"http://127.0.0.1:{self.ports[host]}/p/0", 302)
        if host == 0 and path == "/__manifest":
            return json_page(self.manifest())
        k = self._page_number(path)
        if k is None:
            return not_found()
        return self.render(host, k)

    def _page_number(self, path):
        if not path.startswith("/p/"):
            return None
        digits = path[3:]
        if not (digits.isascii() and digits.isdigit()) or str(int(digits)) != digits:
            return None  # not a number, or leading zeros (a second spelling of a page)
        k = int(digits)
        return k if k < self.page_count else None

    def links(self, i, k):
        m, n = self.page_count, len(self.ports)
        same = [k + 1, 2 * k + 1, 2 * k + 2] + [7 * k + j for j in range(1, 8)]
        hrefs = [f"/p/{t % m}" for t in same]
        others = [(2 * i + 1 + k % 2) % n]
        if k % 5 == 0:
            others.append((i + 1) % n)
        hrefs += [f"http://127.0.0.1:{self.ports[h]}/p/0"
                  for h in dict.fromkeys(others) if h != i]
        return hrefs

    def _render(self, i, k):
        target = 4096 + (i * 131 + k * 17) % 3400  # + one paragraph: < 8 KiB
        page = html_page(f"host {i} page {k}", links=self.links(i, k),
                         text=f"Benchmark page {k} of host {i}.")
        parts = [page.body[: -len(b"</body></html>\n")]]
        size, n = len(parts[0]), i * 31 + k * 7
        while size < target:
            paragraph = self.filler[n % len(self.filler)]
            parts.append(paragraph)
            size += len(paragraph)
            n += 1
        parts.append(b"</body></html>\n")
        page.body = b"".join(parts)
        return page

    def manifest(self):
        return {
            "mode": "bench",
            "hosts": [base_url(port) for port in self.ports],
            "pages_per_host": self.page_count,
            "total_pages": self.page_count * len(self.ports),
            "seed": f"http://127.0.0.1:{self.ports[0]}/p/0",
        }


# ---------------------------------------------------------------------------------------------
# HTTP plumbing


class AccessLog:
    """One JSON object per line, flushed per line; safe to call from many threads."""

    def __init__(self, path):
        self._file = open(path, "w", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, **entry):
        line = json.dumps(entry, separators=(", ", ": ")) + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)
                self._file.flush()

    def close(self):
        with self._lock:
            self._file.close()


class SiteServer(ThreadingHTTPServer):
    """One host: a port on 127.0.0.1, served with a thread per connection."""

    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port, index, site, access_log):
        self.index = index
        self.site = site
        self.access_log = access_log
        self.host_name = f"127.0.0.1:{port}"
        super().__init__(("127.0.0.1", port), SiteHandler)


class SiteHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SixfoldTestSite/1.0"
    timeout = 60  # idle keep-alive connections are closed after this

    def do_GET(self):
        self.respond(send_body=True)

    def do_HEAD(self):
        self.respond(send_body=False)

    def do_OTHER(self):
        self.respond(send_body=True, page=text_page("method not allowed\n", status=405,
                                                    headers={"Allow": "GET, HEAD"}))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_OTHER

    def respond(self, send_body, page=None):
        started = time.time()
        if page is None:
            page = self.server.site.route(self.server.index, urlsplit(self.path).path or "/")
        sent = 0
        try:
            if page.delay:
                time.sleep(page.delay)
            self.send_head(page)
            if send_body:
                sent = self.send_body(page)
        except (BrokenPipeError, ConnectionResetError, TimeoutError) as err:
            sent = getattr(err, "sent", sent)
            self.close_connection = True
        finally:
            self.server.access_log.write(
                t=started, host=self.server.host_name, method=self.command, path=self.path,
                status=page.status, ua=self.headers.get("User-Agent", ""), bytes=sent)

    def send_head(self, page):
        self.send_response(page.status)
        self.send_header("Content-Type", page.content_type)
        self.send_header("Content-Length", str(page.length))
        for name, value in page.headers.items():
            self.send_header(name, value)
        self.end_headers()

    def send_body(self, page):
        if page.stream is None:
            self.wfile.write(page.body)
            return len(page.body)
        sent = 0
        try:
            for piece in page.stream():
                self.wfile.write(piece)
                sent += len(piece)
        except OSError as err:
            err.sent = sent
            raise
        return sent

    def log_message(self, format, *args):
        pass  # the JSON access log replaces http.server's stderr log


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Local test web site for the Sixfold crawler.")
    parser.add_argument("--mode", choices=("test", "bench"), required=True)
    parser.add_argument("--base-port", type=int, required=True)
    parser.add_argument("--hosts", type=int, default=200, help="bench mode only")
    parser.add_argument("--pages", type=int, default=500, help="bench mode only")
    parser.add_argument("--access-log", required=True)
    parser.add_argument("--ready-file")
    args = parser.parse_args(argv)
    if args.hosts < 1 or args.pages < 1:
        parser.error("--hosts and --pages must be at least 1")
    return args


def make_site(args):
    if args.mode == "test":
        return TestSite(args.base_port)
    return BenchSite(args.base_port, args.hosts, args.pages)


def start_servers(site, access_log):
    """Bind every port (all or nothing), then serve each on a daemon thread."""
    servers = []
    try:
        for index, port in enumerate(site.ports):
            servers.append(SiteServer(port, index, site, access_log))
    except OSError as err:
        for server in servers:
            server.server_close()
        raise SystemExit(f"site.py: cannot listen on 127.0.0.1:{port}: {err}")
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                         name=f"serve-{server.host_name}", daemon=True).start()
    return servers


def write_ready_file(path, urls):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(url + "\n" for url in urls))
    os.replace(tmp, path)


def stop_servers(servers):
    """shutdown() waits for each serve_forever loop; do them in parallel."""
    stoppers = [threading.Thread(target=server.shutdown) for server in servers]
    for thread in stoppers:
        thread.start()
    for thread in stoppers:
        thread.join()
    for server in servers:
        server.server_close()


def main(argv=None):
    args = parse_args(argv)
    if args.ready_file and os.path.exists(args.ready_file):
        os.remove(args.ready_file)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    site = make_site(args)
    access_log = AccessLog(args.access_log)
    servers = start_servers(site, access_log)
    urls = [base_url(port) for port in site.ports]
    if args.ready_file:
        write_ready_file(args.ready_file, urls)
    print(f"site.py: {args.mode} mode, {len(urls)} hosts on ports "
          f"{site.ports[0]}..{site.ports[-1]}", file=sys.stderr, flush=True)
    while not stop.wait(1.0):
        pass
    stop_servers(servers)
    access_log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
