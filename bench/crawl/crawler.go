// The Go baseline: a breadth-first crawler on net/http with a semaphore (a buffered
// channel), one goroutine per page. Links come from golang.org/x/net/html's HTML5 parser
// (html.Parse, a full tree as gumbo builds; Debian's golang-golang-x-net-dev, GOPATH
// /usr/share/gocode), or with -regex from a regular expression. Same host only; stops after
// -max pages.
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o crawler crawler.go
//	./crawler -c 50 -max 2000 http://127.0.0.1:8080/
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sync"
	"time"

	"golang.org/x/net/html"
)

var hrefRe = regexp.MustCompile(`(?i)<a\s[^>]*href="([^"]*)"`)

// The hrefs of <a> and <area>, in document order, from a parsed tree.
func parsedLinks(body []byte) []string {
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return nil
	}
	var out []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "a" || n.Data == "area") {
			for _, a := range n.Attr {
				if a.Key == "href" {
					out = append(out, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}

func regexLinks(body []byte) []string {
	var out []string
	for _, m := range hrefRe.FindAllSubmatch(body, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

func main() {
	conc := flag.Int("c", 50, "fetches at once")
	max := flag.Int("max", 2000, "pages at most")
	useRegex := flag.Bool("regex", false, "find links with a regular expression instead of parsing")
	flag.Parse()
	seed, err := url.Parse(flag.Arg(0))
	if err != nil || seed.Host == "" {
		fmt.Fprintln(os.Stderr, "usage: crawler [-c N] [-max N] URL")
		os.Exit(2)
	}
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxIdleConns: *conc * 2},
		Timeout:   30 * time.Second,
	}
	sem := make(chan struct{}, *conc)
	var mu sync.Mutex
	seen := map[string]bool{seed.String(): true}
	var wg sync.WaitGroup
	pages, errors := 0, 0
	var visit func(u *url.URL)
	visit = func(u *url.URL) {
		defer wg.Done()
		sem <- struct{}{}
		resp, err := client.Get(u.String())
		var body []byte
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		<-sem
		mu.Lock()
		pages++
		if err != nil || resp.StatusCode >= 400 {
			errors++
		}
		mu.Unlock()
		if err != nil {
			return
		}
		links := parsedLinks
		if *useRegex {
			links = regexLinks
		}
		for _, h := range links(body) {
			ref, err := url.Parse(h)
			if err != nil {
				continue
			}
			next := u.ResolveReference(ref)
			next.Fragment = ""
			if next.Host != seed.Host {
				continue
			}
			key := next.String()
			mu.Lock()
			if !seen[key] && len(seen) < *max {
				seen[key] = true
				wg.Add(1)
				go visit(next)
			}
			mu.Unlock()
		}
	}
	start := time.Now()
	wg.Add(1)
	go visit(seed)
	wg.Wait()
	secs := time.Since(start).Seconds()
	fmt.Fprintf(os.Stderr, "go crawler: %d pages (%d errors) in %.2f s\n", pages, errors, secs)
}
