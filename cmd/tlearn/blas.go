package main

// blasBackend names the BLAS implementation the head trainer uses.
func blasBackend() string { return "gonum (pure Go)" }
