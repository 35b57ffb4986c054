package cache

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFingerprint(t *testing.T) {
	t.Parallel()
	base := FingerprintInput{ExtractorSHA256: "aa", Preset: "vgg16-keras", Size: 224, Interpolation: "nearest",
		Preprocessing: json.RawMessage(`{"layout": "NHWC"}`)}
	fp := Fingerprint(base)
	if len(fp) != 64 {
		t.Fatalf("fingerprint %q", fp)
	}
	same := base
	same.Preprocessing = json.RawMessage(`{"layout":"NHWC"}`)
	if Fingerprint(same) != fp {
		t.Error("JSON whitespace changed the fingerprint")
	}
	for _, tc := range []struct {
		desc string
		mod  func(*FingerprintInput)
	}{
		{"model", func(f *FingerprintInput) { f.ExtractorSHA256 = "ab" }},
		{"preset", func(f *FingerprintInput) { f.Preset = "vgg16-torchvision" }},
		{"size", func(f *FingerprintInput) { f.Size = 256 }},
		{"interpolation", func(f *FingerprintInput) { f.Interpolation = "bilinear" }},
		{"preprocessing", func(f *FingerprintInput) { f.Preprocessing = json.RawMessage(`{"layout":"NCHW"}`) }},
		{"fields do not run into each other", func(f *FingerprintInput) { f.ExtractorSHA256, f.Preset = "aavgg16-keras", "" }},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			in := base
			tc.mod(&in)
			if Fingerprint(in) == fp {
				t.Error("fingerprint unchanged")
			}
		})
	}
}

func TestDiffItems(t *testing.T) {
	t.Parallel()
	m := testManifest(4, 1, 2, nil)
	m.Skipped = []Skipped{{Item: Item{Path: "cat/bad.jpg", Size: 0}, Reason: "empty file"}}
	cur := []Item{m.Items[0], m.Items[1], m.Items[2], m.Items[3], m.Skipped[0].Item}
	if d := m.DiffItems(cur); !d.Empty() {
		t.Fatalf("unexpected diff %v", d)
	}
	cur = append(cur[:3], cur[4])
	cur[1].ModTime = cur[1].ModTime.Add(time.Second)
	cur[2].Label = 1
	cur = append(cur, Item{Path: "dog/new.png", Label: 1})
	d := m.DiffItems(cur)
	if len(d.Added) != 1 || len(d.Removed) != 1 || len(d.Changed) != 2 {
		t.Fatalf("diff %+v", d)
	}
	s := d.String()
	for _, want := range []string{"1 added (dog/new.png)", "1 removed (dog/003.png)", "2 changed"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		mod  func(*Manifest)
		want string
	}{
		{"ok", func(*Manifest) {}, ""},
		{"format", func(m *Manifest) { m.Format = 2 }, "format"},
		{"n", func(m *Manifest) { m.N = 3 }, "items"},
		{"label", func(m *Manifest) { m.Items[0].Label = 2 }, "label"},
		{"path escapes", func(m *Manifest) { m.Items[0].Path = "../x.png" }, "relative"},
		{"absolute path", func(m *Manifest) { m.Items[0].Path = "/x.png" }, "relative"},
		{"duplicate", func(m *Manifest) { m.Items[1].Path = m.Items[0].Path }, "twice"},
		{"maps rank", func(m *Manifest) { m.MapsShape = []int{1, 2} }, "maps shape"},
		{"range not a chunk", func(m *Manifest) {
			m.Done = []Range{{Start: 1, End: 3, Checksums: map[string]string{FeaturesFile: "0", LabelsFile: "0"}}}
		}, "chunk"},
		{"range without checksum", func(m *Manifest) { m.Done = []Range{{Start: 0, End: 2}} }, "checksum"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			m := testManifest(4, 1, 2, nil)
			m.Format = FormatVersion
			tc.mod(m)
			err := m.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// FuzzParseManifest checks that no input panics the manifest reader and
// that every accepted manifest gives consistent chunk arithmetic.
func FuzzParseManifest(f *testing.F) {
	m := testManifest(5, 2, 2, []int{1, 2, 2})
	m.Format = FormatVersion
	m.Done = []Range{{Start: 2, End: 4, Checksums: map[string]string{FeaturesFile: "1", LabelsFile: "2", MapsFile: "3"}}}
	b, _ := json.Marshal(m)
	f.Add(b)
	f.Add([]byte(`{"format":1,"n":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b)
		if err != nil {
			return
		}
		rows := m.DoneRows()
		for _, r := range m.Pending() {
			rows += r.End - r.Start
		}
		if rows != m.N {
			t.Fatalf("done and pending rows add up to %d, N = %d", rows, m.N)
		}
		for _, a := range m.Arrays() {
			if a.RowBytes() <= 0 {
				t.Fatalf("%s: row bytes %d", a.File, a.RowBytes())
			}
		}
		m.ClassCounts()
	})
}
