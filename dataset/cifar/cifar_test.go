package cifar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/progress"
)

// writeCIFAR writes one CIFAR version in the given container and returns
// the path to convert.
func writeCIFAR(t *testing.T, format string, proto int, container string, recs map[string][]cifarRec) string {
	t.Helper()
	dir, names, files := cifarFiles(format, proto, recs)
	root := t.TempDir()
	switch container {
	case "tar.gz", "tar":
		p := filepath.Join(root, "cifar."+container)
		tarball(t, p, dir, names, files, container == "tar.gz")
		return p
	case "batches folder", "parent folder":
		for _, n := range names {
			fixtures.WriteFile(t, filepath.Join(root, dir, n), files[n])
		}
		if container == "parent folder" {
			return root
		}
		return filepath.Join(root, dir)
	}
	t.Fatalf("container %s", container)
	return ""
}

// expectCIFAR lists the files a conversion must write and their pixels.
func expectCIFAR(format string, recs map[string][]cifarRec, trainN, testN int) map[string][]byte {
	want := map[string][]byte{}
	for _, split := range []struct {
		name    string
		batches []string
		limit   int
	}{{"train", cifarTrainBatches, trainN}, {"test", []string{cifarTestBatch}, testN}} {
		counts := map[uint8]int{}
		pos := 0
		for _, b := range split.batches {
			for _, r := range recs[b] {
				name := fmt.Sprintf("%05d.png", pos)
				pos++
				if format == FormatPython {
					name = r.name
				}
				if split.limit > 0 && counts[r.label] >= split.limit {
					continue
				}
				counts[r.label]++
				want[split.name+"/"+cifarClasses[r.label]+"/"+name] = r.pix
			}
		}
	}
	return want
}

func checkConverted(t *testing.T, out string, want map[string][]byte) {
	t.Helper()
	got := 0
	err := filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		if rel == dataset.MarkerFile {
			return nil
		}
		pix, ok := want[filepath.ToSlash(rel)]
		if !ok {
			t.Errorf("unexpected file %s", rel)
			return nil
		}
		got++
		img := fixtures.ReadPNG(t, p)
		if img.Bounds() != image.Rect(0, 0, 32, 32) {
			t.Errorf("%s: bounds %v", rel, img.Bounds())
			return nil
		}
		for y := range 32 {
			for x := range 32 {
				r, g, b, _ := img.At(x, y).RGBA()
				i := y*32 + x
				if uint8(r>>8) != pix[i] || uint8(g>>8) != pix[1024+i] || uint8(b>>8) != pix[2048+i] {
					t.Fatalf("%s: pixel (%d,%d) differs", rel, x, y)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != len(want) {
		t.Errorf("%d files, want %d", got, len(want))
	}
}

func TestConvert(t *testing.T) {
	t.Parallel()
	recs := fakeCIFAR(5, 12, 10)
	for _, tc := range []struct {
		desc, format string
		proto        int
		container    string
		train, test  int
	}{
		{"python py2 tar.gz", FormatPython, 2, "tar.gz", 0, 0},
		{"python py2 parent folder subset", FormatPython, 2, "parent folder", 2, 1},
		{"python protocol 4 tar", FormatPython, 4, "tar", 0, 0},
		{"python protocol 5 folder subset", FormatPython, 5, "batches folder", 5, 3},
		{"binary tar.gz subset", FormatBinary, 0, "tar.gz", 3, 1},
		{"binary folder", FormatBinary, 0, "batches folder", 0, 0},
		{"binary parent folder", FormatBinary, 0, "parent folder", 0, 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			src := writeCIFAR(t, tc.format, tc.proto, tc.container, recs)
			out := filepath.Join(t.TempDir(), "out")
			p := &progress.Recorder{}
			sum, err := Convert(context.Background(), src, out, dataset.ConvertSettings{TrainPerClass: tc.train, TestPerClass: tc.test, Progress: p})
			if err != nil {
				t.Fatal(err)
			}
			want := expectCIFAR(tc.format, recs, tc.train, tc.test)
			checkConverted(t, out, want)
			if sum.Format != tc.format || !reflect.DeepEqual(sum.Classes, cifarClasses) {
				t.Errorf("summary %+v", sum)
			}
			total := 0
			for c := range cifarClasses {
				total += sum.Train[c] + sum.Test[c]
			}
			if want := fmt.Sprintf("start writing cifar10 images %d 0", len(want)); len(p.Events) == 0 || p.Events[0] != want || p.Events[len(p.Events)-1] != "finish" {
				t.Errorf("progress events %q..., want %q first", p.Events[:min(3, len(p.Events))], want)
			}
			if total != len(want) || p.Added != len(want) {
				t.Errorf("summary counts %d, progress %d, want %d", total, p.Added, len(want))
			}
		})
	}
}

func TestConvertNames(t *testing.T) {
	t.Parallel()
	recs := fakeCIFAR(5, 4, 10)
	// Same name twice in one class, a path and a name without extension.
	recs["data_batch_2"][0].name = recs["data_batch_1"][0].name
	recs["data_batch_2"][0].label = recs["data_batch_1"][0].label
	recs["data_batch_2"][1].name = "../../evil"
	recs["data_batch_2"][2].name = ".hidden.png"
	src := writeCIFAR(t, FormatPython, 2, "tar.gz", recs)
	out := t.TempDir()
	if _, err := Convert(context.Background(), src, out, dataset.ConvertSettings{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"train/" + cifarClasses[recs["data_batch_1"][0].label] + "/" + recs["data_batch_1"][0].name,
		"train/" + cifarClasses[recs["data_batch_1"][0].label] + "/img_a_0_00004.png",
		"train/" + cifarClasses[recs["data_batch_2"][1].label] + "/evil.png",
		"train/" + cifarClasses[recs["data_batch_2"][2].label] + "/00006.png",
	} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Errorf("missing %s", p)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	t.Parallel()
	recs := fakeCIFAR(5, 6, 10)
	pyDir, pyNames, pyFiles := cifarFiles(FormatPython, 2, recs)
	binDir, binNames, binFiles := cifarFiles(FormatBinary, 0, recs)
	tmp := t.TempDir()

	full := filepath.Join(tmp, "full.tar.gz")
	tarball(t, full, pyDir, pyNames, pyFiles, true)
	data, _ := os.ReadFile(full)
	cut := filepath.Join(tmp, "cut.tar.gz")
	fixtures.WriteFile(t, cut, data[:len(data)*2/3])

	with := func(name string, files map[string][]byte, file string, data []byte) string {
		f := map[string][]byte{}
		for k, v := range files {
			f[k] = v
		}
		f[file] = data
		p := filepath.Join(tmp, name)
		names := pyNames
		dir := pyDir
		if _, ok := files["batches.meta.txt"]; ok {
			names, dir = binNames, binDir
		}
		var keep []string
		for _, n := range names {
			if f[n] != nil {
				keep = append(keep, n)
			}
		}
		tarball(t, p, dir, keep, f, true)
		return p
	}
	garbage := with("garbage.tar.gz", pyFiles, "data_batch_3", []byte("\x80\x02}q\x01(U\x04dataq\x02Z"))
	trunc := with("trunc.tar.gz", pyFiles, "data_batch_2", pyFiles["data_batch_2"][:5000])
	noTest := with("notest.tar.gz", pyFiles, "test_batch", nil)
	badSize := with("badsize.tar.gz", binFiles, "data_batch_1.bin", binFiles["data_batch_1.bin"][:cifarRecord*3+100])
	badLabel := append([]byte(nil), binFiles["test_batch.bin"]...)
	badLabel[cifarRecord*2] = 12
	badLabelTar := with("badlabel.tar.gz", binFiles, "test_batch.bin", badLabel)
	notArchive := filepath.Join(tmp, "notes.txt")
	fixtures.WriteFile(t, notArchive, bytes.Repeat([]byte("hello "), 200))
	emptyDir := filepath.Join(tmp, "emptydir")
	os.Mkdir(emptyDir, 0o755)

	for _, tc := range []struct {
		desc, src string
		want      []string
	}{
		{"missing", filepath.Join(tmp, "nope.tar.gz"), []string{"nope.tar.gz", "does not exist"}},
		{"truncated archive", cut, []string{cut, "truncated"}},
		{"corrupt pickle", garbage, []string{garbage, "data_batch_3", "pickle"}},
		{"truncated pickle", trunc, []string{trunc, "data_batch_2", "truncated"}},
		{"missing batch", noTest, []string{noTest, "lacks test_batch"}},
		{"binary wrong size", badSize, []string{badSize, "data_batch_1.bin", "3073-byte records"}},
		{"binary bad label", badLabelTar, []string{"test_batch.bin", "image 2 has label 12"}},
		{"not an archive", notArchive, []string{notArchive, "want a .tar.gz"}},
		{"folder without batches", emptyDir, []string{emptyDir, "no CIFAR-10 batches"}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			_, err := Convert(context.Background(), tc.src, out, dataset.ConvertSettings{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConvertOutputFolder(t *testing.T) {
	t.Parallel()
	recs := fakeCIFAR(5, 2, 10)
	src := writeCIFAR(t, FormatBinary, 0, "batches folder", recs)
	out := t.TempDir()
	fixtures.WriteFile(t, filepath.Join(out, "train", "stale", "old.png"), []byte("x"))
	fixtures.WriteFile(t, filepath.Join(out, "keep.txt"), []byte("x"))
	if _, err := Convert(context.Background(), src, out, dataset.ConvertSettings{}); !errors.Is(err, dataset.ErrNotEmpty) {
		t.Fatalf("non-empty output: %v, want dataset.ErrNotEmpty", err)
	}
	if _, err := Convert(context.Background(), src, out, dataset.ConvertSettings{Overwrite: true}); !errors.Is(err, fsutil.ErrForeign) ||
		!strings.Contains(err.Error(), "keep.txt, train/") {
		t.Fatalf("overwrite of a folder that Convert did not make: %v, want fsutil.ErrForeign naming its entries", err)
	}
	fixtures.WriteFile(t, filepath.Join(out, dataset.MarkerFile), nil) // as if an earlier Convert had made it
	if _, err := Convert(context.Background(), src, out, dataset.ConvertSettings{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "train", "stale")); !os.IsNotExist(err) {
		t.Error("overwrite kept the old train folder")
	}
	if _, err := os.Stat(filepath.Join(out, "keep.txt")); err != nil {
		t.Error("overwrite removed a file outside train and test")
	}
	file := filepath.Join(t.TempDir(), "file")
	fixtures.WriteFile(t, file, nil)
	if _, err := Convert(context.Background(), src, file, dataset.ConvertSettings{}); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Errorf("output is a file: %v", err)
	}
	fixtures.WriteFile(t, filepath.Join(filepath.Dir(src), dataset.MarkerFile), nil)
	if _, err := Convert(context.Background(), src, filepath.Dir(src), dataset.ConvertSettings{Overwrite: true}); err != nil {
		t.Errorf("output around the input: %v", err)
	}
	nested := t.TempDir()
	dir, names, files := cifarFiles(FormatBinary, 0, recs)
	for _, n := range names {
		fixtures.WriteFile(t, filepath.Join(nested, "train", dir, n), files[n])
	}
	if _, err := Convert(context.Background(), filepath.Join(nested, "train", dir), nested, dataset.ConvertSettings{Overwrite: true}); err == nil || !strings.Contains(err.Error(), "would be replaced") {
		t.Errorf("input inside an output part: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Convert(ctx, src, filepath.Join(t.TempDir(), "o"), dataset.ConvertSettings{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// FuzzCIFARPickle feeds outside bytes to the pickle reader and the batch
// and meta interpreters.
func FuzzCIFARPickle(f *testing.F) {
	// Small seeds keep the fuzzer fast: batches of no image and of one.
	recs := fakeCIFAR(1, 1, 10)
	for _, proto := range []int{2, 3, 4, 5} {
		f.Add(pythonBatch(proto, "data_batch_1", nil))
		f.Add(pythonMeta(proto, cifarClasses))
	}
	f.Add(pythonBatch(2, "data_batch_1", recs["data_batch_1"]))
	f.Fuzz(func(t *testing.T, data []byte) {
		if b, err := parseCIFARPythonBatch(data); err == nil {
			if len(b.pixels) != len(b.labels)*cifarPixels || (b.names != nil && len(b.names) != len(b.labels)) {
				t.Fatalf("inconsistent batch: %d pixels, %d labels, %d names", len(b.pixels), len(b.labels), len(b.names))
			}
		}
		if names, err := parseCIFARPythonMeta(data); err == nil && len(names) == 0 {
			t.Fatal("meta without names")
		}
	})
}

// FuzzCIFARBinary feeds outside bytes to the binary record reader and the
// class-name reader.
func FuzzCIFARBinary(f *testing.F) {
	recs := fakeCIFAR(1, 1, 10)
	f.Add(binaryBatch(recs["data_batch_1"]))
	f.Add([]byte(strings.Join(cifarClasses, "\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		err := readCIFARBinary(context.Background(), bytes.NewReader(data), int64(len(data)), "fuzz", 10, func(i int, label uint8, pix []byte) error {
			if i != n || label >= 10 || len(pix) != cifarPixels {
				t.Fatalf("record %d: label %d, %d bytes", i, label, len(pix))
			}
			n++
			return nil
		})
		if err == nil && n*cifarRecord != len(data) {
			t.Fatalf("%d records from %d bytes", n, len(data))
		}
		parseCIFARBinaryMeta(data)
	})
}

// TestConvertRefusesFIFO checks that an archive path naming a named pipe is
// refused up front, where reading it would block until a writer comes.
func TestConvertRefusesFIFO(t *testing.T) {
	t.Parallel()
	fifo := fixtures.FIFO(t, filepath.Join(t.TempDir(), "cifar-10-python.tar.gz"))
	var err error
	fixtures.Within(t, 20*time.Second, func() { fixtures.UnblockFIFO(fifo) }, func() {
		_, err = Convert(context.Background(), fifo, filepath.Join(t.TempDir(), "out"), dataset.ConvertSettings{})
	})
	if !errors.Is(err, fsutil.ErrNotRegular) || !strings.Contains(err.Error(), fifo) || !strings.Contains(err.Error(), "FIFO") {
		t.Fatalf("err = %v, want one naming %s as a FIFO", err, fifo)
	}
}

// TestConvertSecondWriterFails holds the lock of the output folder, as a
// conversion running in another process would, and checks that a second
// conversion into it fails at once, naming the holder, and writes nothing.
func TestConvertSecondWriterFails(t *testing.T) {
	t.Parallel()
	src := writeCIFAR(t, FormatBinary, 0, "tar.gz", fakeCIFAR(5, 4, 10))
	out := filepath.Join(t.TempDir(), "out")
	held, err := fsutil.LockOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	_, err = Convert(context.Background(), src, out, dataset.ConvertSettings{})
	var le *fsutil.LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !strings.Contains(err.Error(), out) {
		t.Fatalf("second writer: %v, want a *fsutil.LockedError naming pid %d and %s", err, os.Getpid(), out)
	}
	if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %v, want it untouched (missing)", out, err)
	}
}
