package experiment

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
)

// compare reproduces the Keras tutorial: its extraction is nearest, and its
// recorded commands say so, whatever the extract command's default is.
// A comparison recorded before they said so (no --interpolation: nearest
// then) is still reused, stage by stage.
func TestCompareExtractsNearest(t *testing.T) {
	t.Parallel()
	ortlibtest.Init(t)
	s := compareFixture(t)
	res, err := Compare(context.Background(), s, &stageRecorder{})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"train", "val"} {
		m, err := cache.ReadManifest(filepath.Join(s.Out, compareCacheDir, part))
		if err != nil {
			t.Fatal(err)
		}
		if m.Interpolation != string(dataset.Nearest) {
			t.Errorf("%s cache: interpolation %q, want nearest", part, m.Interpolation)
		}
	}
	extract := res.Stages[0]
	for _, cmd := range extract.Commands {
		if i := slices.Index(cmd, "--interpolation"); i < 0 || cmd[i+1] != "nearest" {
			t.Errorf("recorded %v, want --interpolation nearest", cmd)
		}
	}

	// stages.json as an older tlearn wrote it: extract without
	// --interpolation.
	path := filepath.Join(s.Out, compareStagesFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	old, n := stripNearest(rec)
	if n != len(extract.Commands) {
		t.Fatalf("stripped --interpolation nearest from %d commands of %s, want %d", n, path, len(extract.Commands))
	}
	if b, err = json.Marshal(old); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	again := &stageRecorder{}
	if _, err := Compare(context.Background(), s, again); err != nil {
		t.Fatal(err)
	}
	if want := []string{stageExtract, stageExtractBest}; !slices.Equal(again.ran, want) {
		t.Errorf("after an older stages.json, ran %v, want only %v (which check their caches)", again.ran, want)
	}
}

// stripNearest removes "--interpolation", "nearest" from every command list
// in v (stages.json decoded as JSON values) and counts them.
func stripNearest(v any) (any, int) {
	switch x := v.(type) {
	case map[string]any:
		n := 0
		for k, e := range x {
			var m int
			x[k], m = stripNearest(e)
			n += m
		}
		return x, n
	case []any:
		for i := 0; i+1 < len(x); i++ {
			if x[i] == "--interpolation" && x[i+1] == "nearest" {
				return slices.Delete(x, i, i+2), 1
			}
		}
		n := 0
		for i, e := range x {
			var m int
			x[i], m = stripNearest(e)
			n += m
		}
		return x, n
	}
	return v, 0
}

func TestSameCommandsOldExtract(t *testing.T) {
	t.Parallel()
	old := []string{"extract", "--model", "m", "--data", "d", "--cache", "c", "--maps", "--size", "32"}
	now := append(slices.Clone(old), "--interpolation", "nearest")
	for _, tc := range []struct {
		desc string
		a, b []string
		want bool
	}{
		{"older record meant nearest", old, now, true},
		{"same", now, now, true},
		{"other filter", old, append(slices.Clone(old), "--interpolation", "bilinear"), false},
		{"not extract", []string{"train", "--interpolation", "nearest"}, []string{"train"}, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := sameCommands([][]string{tc.a}, [][]string{tc.b}); got != tc.want {
				t.Errorf("sameCommands(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}
