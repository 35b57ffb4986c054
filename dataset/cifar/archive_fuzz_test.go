package cifar

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCIFARArchive feeds outside bytes, as a .tar or .tar.gz, to the
// first pass of Convert: reading the archive's members, their labels and
// class names. An archive it accepts names a known version, at least one
// class and labels below the class count. The seeds hold one image in
// all, in data_batch_1, small enough for thousands of runs a minute.
func FuzzCIFARArchive(f *testing.F) {
	recs := map[string][]cifarRec{}
	for _, b := range append(cifarTrainBatches[:len(cifarTrainBatches):len(cifarTrainBatches)], cifarTestBatch) {
		recs[b] = []cifarRec{}
	}
	recs["data_batch_1"] = fakeCIFAR(1, 1, 10)["data_batch_1"]
	dir := f.TempDir()
	for _, format := range []string{FormatBinary, FormatPython} {
		for _, gz := range []bool{true, false} {
			sub, names, files := cifarFiles(format, 2, recs)
			p := filepath.Join(dir, "cifar.tar")
			tarball(f, p, sub, names, files, gz)
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "cifar.tar.gz")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		in := tarInput(p)
		sc := &cifarScan{batches: map[string]*cifarBatch{}, where: map[string]string{}}
		if err := in.each(context.Background(), sc.add); err != nil {
			return
		}
		kind, classes, err := sc.check(in.String())
		if err != nil {
			return
		}
		if kind.format != FormatBinary && kind.format != FormatPython || len(classes) == 0 {
			t.Fatalf("accepted %q with %d classes", kind.format, len(classes))
		}
		for name, batch := range sc.batches {
			for _, l := range batch.labels {
				if int(l) >= len(classes) {
					t.Fatalf("%s: label %d of %d classes accepted", name, l, len(classes))
				}
			}
		}
	})
}
