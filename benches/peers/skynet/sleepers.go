// The sleepers, the Go peer of examples/sleep_many.rs: N goroutines each
// sleep 1 s; main waits for all. Prints the wall time and the peak RSS
// (getrusage). Usage: go run sleepers.go N. See README.md.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	n := 10000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			time.Sleep(time.Second)
			wg.Done()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("go       n=%-8d sleep=1s wall=%.3fs peak_rss=%.1fMiB\n",
		n, wall.Seconds(), float64(ru.Maxrss)/1024)
}
