#!/usr/bin/env python3
"""The gevent baseline: monkey-patched urllib, a gevent.pool.Pool of C workers taking URLs
from a queue, links found with html.parser. Same host only; stops after --max pages.

  crawler_gevent.py URL [-c 50] [--max 2000]
"""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import html.parser  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402

import gevent.pool  # noqa: E402
import gevent.queue  # noqa: E402


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            for k, v in attrs:
                if k == "href" and v:
                    self.hrefs.append(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("-c", type=int, default=50)
    ap.add_argument("--max", type=int, default=2000)
    a = ap.parse_args()
    host = urllib.parse.urlsplit(a.url).netloc
    seen = {a.url}
    q = gevent.queue.JoinableQueue()
    q.put(a.url)
    stats = {"pages": 0, "errors": 0}

    def worker():
        while True:
            url = q.get()
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    body = r.read()
                    ctype = r.headers.get_content_type()
                stats["pages"] += 1
                if ctype == "text/html":
                    p = Links()
                    p.feed(body.decode("utf-8", "replace"))
                    for h in p.hrefs:
                        nxt, _ = urllib.parse.urldefrag(urllib.parse.urljoin(url, h))
                        if urllib.parse.urlsplit(nxt).netloc == host and nxt not in seen and len(seen) < a.max:
                            seen.add(nxt)
                            q.put(nxt)
            except Exception:
                stats["pages"] += 1
                stats["errors"] += 1
            finally:
                q.task_done()

    start = time.time()
    pool = gevent.pool.Pool(a.c)
    for _ in range(a.c):
        pool.spawn(worker)
    q.join()
    pool.kill()
    print(f"gevent crawler: {stats['pages']} pages ({stats['errors']} errors) in {time.time() - start:.2f} s",
          file=sys.stderr)


main()
