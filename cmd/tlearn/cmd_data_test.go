package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func dataApp(stdout *bytes.Buffer) *cli.App { return appWith(stdout, nil, dataCommand()) }

// writeIdx writes an IDX file of unsigned bytes.
func writeIdx(t *testing.T, path string, dims []int, data []byte) {
	t.Helper()
	out := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		out = binary.BigEndian.AppendUint32(out, uint32(d))
	}
	if err := os.WriteFile(path, append(out, data...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDataCommands converts MNIST and CIFAR-10 (binary) fixtures, splits
// the result, and checks the usage errors.
func TestDataCommands(t *testing.T) {
	dir := t.TempDir()
	mnist := filepath.Join(dir, "idx")
	os.Mkdir(mnist, 0o755)
	const n = 40
	labels := make([]byte, n)
	for i := range labels {
		labels[i] = byte(i % 10)
	}
	for _, p := range []string{"train", "t10k"} {
		writeIdx(t, filepath.Join(mnist, p+"-images-idx3-ubyte"), []int{n, 6, 5}, bytes.Repeat([]byte{7}, n*30))
		writeIdx(t, filepath.Join(mnist, p+"-labels-idx1-ubyte"), []int{n}, labels)
	}
	cifar := filepath.Join(dir, "cifar-10-batches-bin")
	os.Mkdir(cifar, 0o755)
	os.WriteFile(filepath.Join(cifar, "batches.meta.txt"), []byte("cat\ndog\n\n"), 0o644)
	for _, b := range []string{"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"} {
		var recs []byte
		for i := range 4 {
			recs = append(recs, byte(i%2))
			recs = append(recs, bytes.Repeat([]byte{byte(i)}, 3072)...)
		}
		os.WriteFile(filepath.Join(cifar, b+".bin"), recs, 0o644)
	}
	occupied := filepath.Join(dir, "occupied")
	os.MkdirAll(filepath.Join(occupied, "x"), 0o755)

	for _, tc := range []struct {
		desc    string
		args    []string
		files   map[string]int // folder -> number of files expected in it
		wantErr string
		usage   bool
	}{
		{desc: "mnist", args: []string{"data", "mnist", "--src", mnist, "--out", filepath.Join(dir, "mnist"), "--train-per-class", "3", "-q"},
			files: map[string]int{"mnist/train/0": 3, "mnist/train/9": 3, "mnist/test/4": 4}},
		{desc: "cifar10 binary", args: []string{"data", "cifar10", "--src", dir, "--out", filepath.Join(dir, "cifar"), "-q"},
			files: map[string]int{"cifar/train/cat": 10, "cifar/train/dog": 10, "cifar/test/dog": 2}},
		{desc: "split", args: []string{"data", "split", "--src", filepath.Join(dir, "mnist", "test"), "--val", "0.25", "--seed", "3", "--out", filepath.Join(dir, "split"), "-q"},
			files: map[string]int{"split/train/0": 3, "split/val/0": 1, "split/val/9": 1}},
		{desc: "split refuses a non-empty output", args: []string{"data", "split", "--src", filepath.Join(dir, "mnist", "test"), "--out", occupied, "-q"}, wantErr: "--force"},
		{desc: "split with force refuses a folder that data did not make", args: []string{"data", "split", "--src", filepath.Join(dir, "mnist", "test"), "--out", occupied, "--force", "-q"},
			wantErr: occupied + " is not a tlearn dataset (one made by tlearn data) (it holds x/); it was left alone (choose another --out)", usage: true},
		{desc: "mnist with force refuses a folder that data did not make", args: []string{"data", "mnist", "--src", mnist, "--out", occupied, "--force", "-q"},
			wantErr: occupied + " is not a tlearn dataset", usage: true},
		{desc: "mnist with force replaces its own output", args: []string{"data", "mnist", "--src", mnist, "--out", filepath.Join(dir, "mnist"), "--train-per-class", "2", "--force", "-q"},
			files: map[string]int{"mnist/train/0": 2, "mnist/test/4": 4}},
		{desc: "split with force replaces a split", args: []string{"data", "split", "--src", filepath.Join(dir, "mnist", "test"), "--val", "0.5", "--out", filepath.Join(dir, "split"), "--force", "-q"},
			files: map[string]int{"split/train/0": 2, "split/val/0": 2, "split/val/9": 2}},
		{desc: "split output inside the source", args: []string{"data", "split", "--src", filepath.Join(dir, "mnist", "test"), "--out", filepath.Join(dir, "mnist", "test", "split")}, wantErr: "inside", usage: true},
		{desc: "missing src", args: []string{"data", "mnist", "--out", filepath.Join(dir, "m2")}, wantErr: "--src", usage: true},
		{desc: "negative subset", args: []string{"data", "cifar10", "--src", dir, "--out", filepath.Join(dir, "c2"), "--test-per-class", "-1"}, wantErr: "--test-per-class", usage: true},
		{desc: "val out of range", args: []string{"data", "split", "--src", mnist, "--out", filepath.Join(dir, "s2"), "--val", "1.5"}, wantErr: "--val", usage: true},
		{desc: "bad source", args: []string{"data", "cifar10", "--src", mnist, "--out", filepath.Join(dir, "c3"), "-q"}, wantErr: "no CIFAR-10 batches"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var out bytes.Buffer
			err := dataApp(&out).Run(append([]string{"tlearn"}, tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				var ue usageError
				if errors.As(err, &ue) != tc.usage {
					t.Errorf("usage error: %v, want %v", !tc.usage, tc.usage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for folder, want := range tc.files {
				entries, err := os.ReadDir(filepath.Join(dir, folder))
				if err != nil {
					t.Fatal(err)
				}
				if len(entries) != want {
					t.Errorf("%s has %d files, want %d", folder, len(entries), want)
				}
			}
		})
	}
}
