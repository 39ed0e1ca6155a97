// One million goroutines parked in time.Sleep until one shared moment: creation time, RSS
// per parked goroutine, wake-all time.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

func rssKiB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}

func main() {
	n := 1_000_000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	runtime.GOMAXPROCS(1)
	rss0 := rssKiB()
	var parked, done sync.WaitGroup
	parked.Add(n)
	done.Add(n)
	t0 := time.Now()
	wakeAt := t0.Add(3*time.Second + time.Duration(4*n)*time.Microsecond)
	for i := 0; i < n; i++ {
		go func() {
			parked.Done()
			time.Sleep(time.Until(wakeAt))
			done.Done()
		}()
	}
	parked.Wait()
	runtime.Gosched()
	created := time.Now()
	rss := rssKiB() - rss0
	done.Wait()
	wake := -1.0
	if created.Before(wakeAt) {
		wake = time.Since(wakeAt).Seconds()
	}
	fmt.Printf("bench=million go_goroutines=%d go_create_s=%.2f go_rss_kib_per_goroutine=%.2f go_wake_all_s=%.2f gomaxprocs=1\n",
		n, created.Sub(t0).Seconds(), float64(rss)/float64(n), wake)
}
