// One-way switch between two goroutines on one P: runtime.Gosched ping-pong.
package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"
)

const switches = 4_000_000

func once() float64 {
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < switches/2; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return float64(time.Since(t0).Nanoseconds()) / switches
}

func main() {
	runtime.GOMAXPROCS(1)
	var v []float64
	for r := 0; r < 7; r++ {
		v = append(v, once())
	}
	sort.Float64s(v)
	fmt.Printf("bench=switch go_gosched_ns=%.1f gomaxprocs=1 runs=7\n", v[3])
}
