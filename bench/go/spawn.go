// go + run + WaitGroup join of 100 000 short goroutines, ns per goroutine.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

const n = 100_000

func once() float64 {
	var wg sync.WaitGroup
	var mu sync.Mutex
	sum := 0
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			mu.Lock()
			sum += i
			mu.Unlock()
			wg.Done()
		}(i)
	}
	wg.Wait()
	if sum != n*(n-1)/2 {
		panic("bad sum")
	}
	return float64(time.Since(t0).Nanoseconds()) / n
}

func main() {
	procs := 1
	if len(os.Args) > 1 {
		procs, _ = strconv.Atoi(os.Args[1])
	}
	runtime.GOMAXPROCS(procs)
	once() // warm the goroutine free list, as the others reuse their stacks
	var v []float64
	for r := 0; r < 7; r++ {
		v = append(v, once())
	}
	sort.Float64s(v)
	fmt.Printf("bench=spawn go_ns_per_goroutine=%.0f gomaxprocs=%d runs=7\n", v[3], procs)
}
