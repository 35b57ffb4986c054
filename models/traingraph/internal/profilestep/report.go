package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// event is what profilestep reads of an ORT profile's trace events.
type event struct {
	Cat, Name string
	Ts, Dur   int64 // µs
	Args      struct {
		OpName string `json:"op_name"`
	}
}

// byPhaseAndOp sums the kernel times of the steps after the first
// (warm-up) run, in ms per step, by "phase  op type".
func byPhaseAndOp(events []event, steps int) map[string]float64 {
	var runs []int64
	for _, e := range events {
		if e.Name == "model_run" {
			runs = append(runs, e.Ts)
		}
	}
	slices.Sort(runs)
	byKey := map[string]float64{}
	for _, e := range events {
		if e.Cat != "Node" || !strings.HasSuffix(e.Name, "_kernel_time") || len(runs) < 2 || e.Ts < runs[1] {
			continue
		}
		key := fmt.Sprintf("%-28s %s", scope(strings.TrimSuffix(e.Name, "_kernel_time")), e.Args.OpName)
		byKey[key] += float64(e.Dur) / 1e3 / float64(steps)
	}
	return byKey
}

// scope is the phase of a node name: node names are scope/Op_N, possibly
// followed by the name of an ORT fusion; "other" when there is none.
func scope(node string) string {
	parts := strings.Split(node, "/")
	for i, p := range parts {
		if j := strings.LastIndexByte(p, '_'); j > 0 && i > 0 {
			if _, err := strconv.Atoi(p[j+1:]); err == nil {
				return strings.Join(parts[:i], "/")
			}
		}
	}
	return "other"
}

// report prints the total and the rows of at least minMS, largest first.
func report(w io.Writer, conv string, byKey map[string]float64) {
	total := 0.0
	for _, v := range byKey {
		total += v
	}
	keys := slices.Collect(maps.Keys(byKey))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(byKey[b], byKey[a]), strings.Compare(a, b)) })
	fmt.Fprintf(w, "conv %s: %.0f ms of kernels per step (%.1f images/s)\n", conv, total, batch/total*1e3)
	for _, k := range keys {
		if byKey[k] >= minMS {
			fmt.Fprintf(w, "  %-45s %8.1f ms\n", k, byKey[k])
		}
	}
}
