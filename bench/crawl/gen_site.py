#!/usr/bin/env python3
"""Generate the crawl benchmark's site: N pages of ~3 KB text with links.

  gen_site.py DIR [--pages N] [--links K] [--words W] [--flat]
  gen_site.py DIR --big-page L


Default: every page links to the next one and to K others at random (a fixed seed), so a
breadth-first crawl from index.html finds all N pages through several levels. --flat: the
index links to every page and pages link back only (all but the index found at depth 1).
--big-page L: only DIR/big.html, one page of L distinct links (<a href=pN>, ~17 bytes each:
600 000 links is ~10 MB), for the crawler's memory on one page.
"""
import argparse
import os
import random

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("dir")
ap.add_argument("--pages", type=int, default=2000)
ap.add_argument("--links", type=int, default=8)
ap.add_argument("--words", type=int, default=450, help="words of text per page (450: ~3.3 KB pages)")
ap.add_argument("--flat", action="store_true")
ap.add_argument("--big-page", type=int, default=0, metavar="L")
a = ap.parse_args()
os.makedirs(a.dir, exist_ok=True)
if a.big_page:
    with open(os.path.join(a.dir, "big.html"), "w") as f:
        f.write("<!doctype html>\n<html><head><title>Big</title></head><body>\n")
        f.write("".join(f"<a href=p{i}>\n" for i in range(a.big_page)))
        f.write("</body></html>\n")
    raise SystemExit(0)
rng = random.Random(7)
words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
         "et dolore magna aliqua").split()


def name(i):
    return "index.html" if i == 0 else f"p{i}.html"


for i in range(a.pages):
    if a.flat:
        targets = list(range(1, a.pages)) if i == 0 else [0]
    else:
        targets = sorted({(i + 1) % a.pages} | {rng.randrange(a.pages) for _ in range(a.links)})
    text = " ".join(rng.choice(words) for _ in range(a.words))
    links = "\n".join(f'<li><a href="{name(t)}">page {t}</a></li>' for t in targets)
    with open(os.path.join(a.dir, name(i)), "w") as f:
        f.write(f"<!doctype html>\n<html><head><title>Page {i}</title></head>\n<body><h1>Page {i}</h1>\n"
                f"<p>{text}</p>\n<ul>\n{links}\n</ul>\n</body></html>\n")
print(f"gen_site: {a.pages} pages in {a.dir} ({'flat' if a.flat else f'{a.links} random links each'})")
