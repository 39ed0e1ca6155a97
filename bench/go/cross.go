// Go baseline for bench_cross (GOMAXPROCS=2), ns per one-way wake; median of 5 runs.
//
//   - go_chan_gomaxprocs2: two goroutines ping-pong over unbuffered channels. Go readies a
//     woken goroutine on the waker's own P (runnext) and the waker then blocks, so this is a
//     same-thread hand-off, not a wake across Ps.
//   - go_chan_gomaxprocs2_busy_waker: a goroutine wakes one parked in a channel receive and
//     stays on its P, spinning on an atomic, until the woken one has run; then again. The
//     waker's P is busy at each wake, so the woken goroutine cannot run where it was readied
//     (the waker's runnext): the other P has to take it. This is the wake across Ps;
//     bench_cross's cross_busy_waker is the same on two ringlet cores. Per wake: the wake,
//     the woken side running, one cache line back.
//   - go_chan_gomaxprocs2_locked_threads: each goroutine locked to its own OS thread
//     (runtime.LockOSThread), which makes every wake a thread hand-off.
//
//   cross [SECONDS]
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
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
	for _, m := range []struct {
		bench, name  string
		locked, busy bool
	}{
		{"cross_pingpong", "go_chan_gomaxprocs2", false, false},
		{"cross_busy_waker", "go_chan_gomaxprocs2_busy_waker", false, true},
		{"cross_pingpong", "go_chan_gomaxprocs2_locked_threads", true, false},
	} {
		fmt.Printf("bench=%s impl=%s ns_per_wake=%.0f runs=5 seconds_each=%.2f\n", m.bench, m.name,
			median5(func() float64 { return run(seconds, m.locked, m.busy) }), seconds)
	}
}

func median5(f func() float64) float64 {
	var v []float64
	for r := 0; r < 5; r++ {
		v = append(v, f())
	}
	sort.Float64s(v)
	return v[2]
}

func run(seconds float64, locked, busy bool) float64 {
	if busy {
		return runBusy(seconds)
	}
	if locked {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
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
	return float64(now.Sub(t0).Nanoseconds()) / float64(2*trips)
}

// The waker sends and spins (holding its P) until the woken goroutine has run, then sends
// again. If the woken one has not parked yet in its receive, the send parks the waker
// instead and the receiver readies it: a wake across Ps all the same, the other way.
func runBusy(seconds float64) float64 {
	ping := make(chan int64)
	var done atomic.Int64
	go func() {
		for x := range ping {
			done.Store(x)
		}
	}()
	var n int64
	t0 := time.Now()
	until := t0.Add(time.Duration(seconds * float64(time.Second)))
	now := t0
	for now.Before(until) {
		for i := 0; i < 256; i++ {
			n++
			ping <- n
			for done.Load() != n {
			}
		}
		now = time.Now()
	}
	close(ping)
	return float64(now.Sub(t0).Nanoseconds()) / float64(n)
}
