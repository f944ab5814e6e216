package main

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

// watchParent ends this process when the launcher that started it is gone.
//
// The launcher starts each component in its own process group (so a Ctrl-C in
// the terminal reaches only the launcher, which then stops the components in
// order), but that also means nothing kills them if the launcher itself is
// SIGKILLed. An orphan is re-parented, so a changed parent pid is the signal.
// It gets SIGTERM first, so etcd and the apiserver shut down as usual.
func watchParent() {
	want, err := strconv.Atoi(os.Getenv("TESTCLUSTER_PARENT_PID"))
	if err != nil || want <= 1 {
		return
	}
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			if os.Getppid() != want {
				_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
				time.Sleep(10 * time.Second)
				os.Exit(1)
			}
		}
	}()
}
