// Go baselines for bench_sync: uncontended sync.Mutex, a Mutex handed back and forth between
// two goroutines (Gosched inside the critical section), and a buffered channel's throughput.
package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"
)

func median(f func() float64) float64 {
	var v []float64
	for i := 0; i < 7; i++ {
		v = append(v, f())
	}
	sort.Float64s(v)
	return v[3]
}

func main() {
	runtime.GOMAXPROCS(1)
	const ops = 2_000_000
	unc := median(func() float64 {
		var m sync.Mutex
		t0 := time.Now()
		for i := 0; i < ops; i++ {
			m.Lock()
			m.Unlock()
		}
		return float64(time.Since(t0).Nanoseconds()) / ops
	})
	fmt.Printf("bench=lock_uncontended go_ns=%.1f gomaxprocs=1 runs=7\n", unc)

	const handoffs = 400_000
	hand := median(func() float64 {
		var m sync.Mutex
		var wg sync.WaitGroup
		wg.Add(2)
		t0 := time.Now()
		for g := 0; g < 2; g++ {
			go func() {
				for i := 0; i < handoffs/2; i++ {
					m.Lock()
					runtime.Gosched()
					m.Unlock()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		return float64(time.Since(t0).Nanoseconds()) / handoffs
	})
	fmt.Printf("bench=lock_handoff go_ns=%.1f gomaxprocs=1 runs=7\n", hand)

	const items = 2_000_000
	q := median(func() float64 {
		ch := make(chan int, 128)
		t0 := time.Now()
		go func() {
			for i := 0; i < items; i++ {
				ch <- i
			}
		}()
		sum := 0
		for i := 0; i < items; i++ {
			sum += <-ch
		}
		if sum != items*(items-1)/2 {
			panic("bad sum")
		}
		return items / time.Since(t0).Seconds()
	})
	fmt.Printf("bench=queue go_chan_items_per_s=%.0f capacity=128 gomaxprocs=1 runs=7\n", q)
}
