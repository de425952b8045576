// Skynet, the Go peer of examples/skynet.rs: 1,111,111 goroutines, each
// spawning 10 children and summing their results over a channel. Prints
// the wall time, the time per goroutine and the peak RSS (getrusage).
// See README.md for how to run it.
package main

import (
	"fmt"
	"syscall"
	"time"
)

func skynet(c chan int, num, size, div int) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int)
	sum := 0
	for i := 0; i < div; i++ {
		sub := num + i*(size/div)
		go skynet(rc, sub, size/div, div)
	}
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func main() {
	const fibers = 1111111
	start := time.Now()
	c := make(chan int)
	go skynet(c, 0, 1000000, 10)
	sum := <-c
	wall := time.Since(start)
	if sum != 499999500000 {
		panic(fmt.Sprintf("wrong sum %d", sum))
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("skynet go fibers=%d sum=%d wall=%.3fs (%.2f us/fiber) peak_rss=%.1fMiB\n",
		fibers, sum, wall.Seconds(), wall.Seconds()*1e6/fibers, float64(ru.Maxrss)/1024)
}
