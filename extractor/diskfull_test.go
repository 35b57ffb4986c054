package extractor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/extractor/internal/extractortest"
	"github.com/tlearn/tlearn/internal/ortlib"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
)

// diskFullExit is the child's exit code when Extract fails, as the CLI
// exits non-zero after printing the error; anything else (a panic, a
// t.Fatal, a success) is told apart from it.
const diskFullExit = 3

// diskFullMarker starts the line on which the child prints Extract's error.
const diskFullMarker = "DISKFULL-ERROR: "

// TestDiskFull runs Extract in a child process whose RLIMIT_FSIZE makes
// writes fail with EFBIG, as a full disk fails them with ENOSPC, at a known
// point: while the cache is created (the arrays are preallocated), at the
// first data write of the third chunk, and at the manifest rewrite that
// would record the third chunk. Each must fail with an error naming the
// file and leave a folder that the same command, without the limit,
// completes into arrays byte-identical to an uninterrupted run's.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	data := extractortest.MakeDataset(t, []string{"a", "b"}, 12) // 24 images, batch 2: chunks of 8
	e := openExtractor(t, Options{Batch: 2})
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := extract(t, e, data, ref, Settings{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc, at string
		force    bool   // rebuild a complete cache that is already there
		file     string // the file the error must name
		doneRows int    // finished rows left for the next run
	}{
		{"preallocation", "create", false, cache.FeaturesFile, 0},
		{"preallocation replacing a cache", "create", true, cache.FeaturesFile, 0},
		{"chunk write", "write", false, cache.FeaturesFile, 16},
		{"manifest rewrite", "manifest", false, cache.ManifestFile, 16},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			if tc.force {
				if _, err := extract(t, e, data, dir, Settings{}); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestDiskFullChild$")
			cmd.Env = append(os.Environ(), "TLEARN_FULL_MODEL="+extractortest.TinyModel(t), "TLEARN_FULL_DATA="+data,
				"TLEARN_FULL_CACHE="+dir, "TLEARN_FULL_AT="+tc.at, fmt.Sprintf("TLEARN_FULL_FORCE=%t", tc.force))
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != diskFullExit {
				t.Fatalf("child did not fail as Extract would: %v\n%s", err, out)
			}
			_, msg, _ := strings.Cut(string(out), diskFullMarker)
			msg, _, _ = strings.Cut(msg, "\n")
			t.Log(msg)
			if p := filepath.Join(dir, tc.file); !strings.Contains(msg, p) || !strings.Contains(msg, "file too large") {
				t.Errorf("error %q does not name %s and its cause", msg, p)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, en := range entries {
				if strings.Contains(en.Name(), ".tmp-") {
					t.Errorf("temporary file %s left behind", en.Name())
				}
			}
			m, err := cache.ReadManifest(dir)
			if tc.doneRows == 0 {
				// No manifest: the next run makes a new cache rather
				// than trusting arrays that were never filled.
				if !errors.Is(err, cache.ErrNotCache) {
					t.Fatalf("manifest after a failed creation: %v", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if m.DoneRows() != tc.doneRows {
					t.Fatalf("%d finished rows, want %d", m.DoneRows(), tc.doneRows)
				}
				if _, err := cache.Open(dir); !errors.Is(err, cache.ErrIncomplete) {
					t.Fatalf("Open of the interrupted cache: %v", err)
				}
			}
			res, err := extract(t, e, data, dir, Settings{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Reused != tc.doneRows || res.Computed != 24-tc.doneRows {
				t.Errorf("next run reused %d and computed %d rows, want %d and %d", res.Reused, res.Computed, tc.doneRows, 24-tc.doneRows)
			}
			sameFiles(t, ref, dir, cache.FeaturesFile, cache.LabelsFile)
		})
	}
}

// TestDiskFullChild is the child of TestDiskFull; it does nothing unless
// started by it.
func TestDiskFullChild(t *testing.T) {
	model := os.Getenv("TLEARN_FULL_MODEL")
	if model == "" {
		t.Skip("helper process of TestDiskFull")
	}
	data, dir, at := os.Getenv("TLEARN_FULL_DATA"), os.Getenv("TLEARN_FULL_CACHE"), os.Getenv("TLEARN_FULL_AT")
	ortlibtest.Init(t)
	// Past the limit the kernel sends SIGXFSZ, which kills by default;
	// ignored, the write fails with EFBIG instead.
	signal.Ignore(syscall.SIGXFSZ)
	limit := func(n uint64) {
		var r syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &r); err != nil {
			t.Fatal(err)
		}
		r.Cur = n
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &r); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{cancelAt: 16}
	switch at {
	case "create":
		// Room for labels.npy (224 bytes), not for features.npy, the first
		// array created.
		limit(1024)
	case "write":
		// After two chunks, no byte can be written: the third chunk's
		// first write, to features.npy, fails.
		rec.onCancel = func() { limit(0) }
	case "manifest":
		// After two chunks, the files may not grow: the data writes land
		// in preallocated space, the manifest that lists one more chunk
		// is longer than the one there.
		rec.onCancel = func() {
			var n int64
			for _, name := range []string{cache.ManifestFile, cache.FeaturesFile, cache.LabelsFile} {
				st, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Error(err)
				} else {
					n = max(n, st.Size())
				}
			}
			limit(uint64(n))
		}
	default:
		t.Fatalf("TLEARN_FULL_AT=%q", at)
	}
	e, err := Open(model, Options{Size: extractortest.Size, Batch: 2, Progress: rec, ORT: ortlib.Options{Device: ortlib.DeviceCPU, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = extract(t, e, data, dir, Settings{Force: os.Getenv("TLEARN_FULL_FORCE") == "true"})
	if err == nil {
		t.Fatal("Extract succeeded past the file size limit")
	}
	fmt.Printf("%s%v\n", diskFullMarker, err)
	os.Exit(diskFullExit)
}
