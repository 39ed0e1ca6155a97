// Go baseline for bench_cross: two goroutines ping-ponging over unbuffered channels with
// GOMAXPROCS=2, ns per one-way wake (a round trip is two); median of 5 runs. Go hands a
// woken goroutine to the waker's own P (runnext), so this is mostly a same-thread switch;
// the second figure locks each goroutine to its own OS thread (runtime.LockOSThread), which
// makes every wake cross threads, as ringlet's cross-core wake does.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"
)

func main() {
	runtime.GOMAXPROCS(2)
	seconds := 0.5
	if len(os.Args) > 1 {
		if s, err := strconv.ParseFloat(os.Args[1], 64); err == nil {
			seconds = s
		}
	}
	for _, locked := range []bool{false, true} {
		name := "go_chan_gomaxprocs2"
		if locked {
			name = "go_chan_gomaxprocs2_locked_threads"
		}
		fmt.Printf("bench=cross_pingpong impl=%s ns_per_wake=%.0f runs=5 seconds_each=%.2f\n", name, run(seconds, locked), seconds)
	}
}

func run(seconds float64, locked bool) float64 {
	if locked {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	var v []float64
	for r := 0; r < 5; r++ {
		ping, pong := make(chan int), make(chan int)
		go func() {
			if locked {
				runtime.LockOSThread()
			}
			for x := range ping {
				pong <- x
			}
		}()
		trips := 0
		t0 := time.Now()
		until := t0.Add(time.Duration(seconds * float64(time.Second)))
		now := t0
		for now.Before(until) {
			for i := 0; i < 256; i++ {
				ping <- i
				<-pong
			}
			trips += 256
			now = time.Now()
		}
		close(ping)
		v = append(v, float64(now.Sub(t0).Nanoseconds())/float64(2*trips))
	}
	sort.Float64s(v)
	return v[2]
}
