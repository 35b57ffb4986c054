package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestByPhaseAndOp(t *testing.T) {
	t.Parallel()
	node := func(name, op string, ts, dur int64) event {
		e := event{Cat: "Node", Name: name + "_kernel_time", Ts: ts, Dur: dur}
		e.Args.OpName = op
		return e
	}
	events := []event{
		{Name: "model_run", Ts: 100}, {Name: "model_run", Ts: 0}, {Name: "model_run", Ts: 200},
		node("forward/MatMul_3", "MatMul", 10, 9000), // warm-up: left out
		node("forward/MatMul_3", "MatMul", 110, 3000),
		node("forward/MatMul_3", "MatMul", 210, 1000),
		node("backward/Conv3x3/MatMul_7/fused", "FusedMatMul", 220, 500),
		node("Add_1", "Add", 230, 4000),
		{Cat: "Session", Name: "forward/x_kernel_time", Ts: 240, Dur: 7000},
	}
	got := byPhaseAndOp(events, 2)
	want := map[string]float64{
		"forward                      MatMul":      2,
		"backward/Conv3x3             FusedMatMul": 0.25,
		"other                        Add":         2,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q = %g ms, want %g", k, got[k], v)
		}
	}
	var out bytes.Buffer
	report(&out, "winograd", got)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "conv winograd: 4 ms of kernels per step (7529.4 images/s)") || !strings.Contains(lines[1], "forward") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestFloat16(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		x    float32
		want uint16
	}{{0, 0}, {1, 0x3c00}, {2.5, 0x4100}, {1e-6, 0}, {0.5, 0x3800}} {
		if got := float16(tc.x); got != tc.want {
			t.Errorf("float16(%g) = %#04x, want %#04x", tc.x, got, tc.want)
		}
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"extra"}, {"-steps", "0"}} {
		if err := run(args, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("run(%q) = %v, want the usage", args, err)
		}
	}
}
