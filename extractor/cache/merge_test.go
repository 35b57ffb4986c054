package cache

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestManifestHeadTail: the manifest that merge writes in two parts is
// byte for byte writeManifest's, with maps, views, a split and skipped
// files, and the parts it appends last are Manifest's last fields.
func TestManifestHeadTail(t *testing.T) {
	t.Parallel()
	m := testManifest(50, 4, 8, []int{2, 1, 1})
	m.Views, m.Augment = 3, &AugmentRef{Spec: "flip", Seed: 1}
	m.Split = &SplitRef{Part: "val", Val: 0.2, Seed: 7}
	m.Skipped = []Skipped{{Item: Item{Path: "cat/bad\n\"done\": .png", Size: 3}, Reason: "decode"}}
	for i, p := range []string{"cat/a<b.png", "cat/c>d.png", "cat/e&f.png", "cat/\"q\"\\.png", "cat/é.png", "cat/\u2028\u2029.png", "cat/bad\xff.png", "cat/tab\t\x7f.png", "cat/\n \"items\": null,\n"} {
		m.Items[i].Path = p
	}
	m.Items[9].ModTime = time.Date(2023, 5, 6, 7, 8, 9, 0, time.FixedZone("", -7*3600))
	m.Items[10].Size, m.Items[10].Label = -1, 1<<40
	m.Created = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	m.Updated = time.Date(2025, 1, 2, 3, 4, 9, 0, time.UTC)
	for k := range m.NumChunks() {
		s, e := m.Chunk(k)
		m.Done = append(m.Done, Range{Start: s, End: e, Checksums: map[string]string{FeaturesFile: fmt.Sprintf("%08x", k), LabelsFile: "0badf00d"}})
	}
	dir := t.TempDir()
	if err := writeManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	head, err := manifestHead(m)
	if err != nil {
		t.Fatal(err)
	}
	tail, err := manifestTailJSON(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := append(head, tail...); !bytes.Equal(got, want) {
		t.Errorf("head + tail differ from writeManifest's encoding:\n%s\nwant\n%s", got, want)
	}
	mt, tt := reflect.TypeFor[Manifest](), reflect.TypeFor[manifestTail]()
	for i := range tt.NumField() {
		f, g := mt.Field(mt.NumField()-tt.NumField()+i), tt.Field(i)
		if f.Name != g.Name || f.Type != g.Type || f.Tag != g.Tag {
			t.Errorf("Manifest's field %d from the end is %s %v %q, manifestTail's %s %v %q", tt.NumField()-i, f.Name, f.Type, f.Tag, g.Name, g.Type, g.Tag)
		}
	}
}
