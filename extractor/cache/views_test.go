package cache

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// withViews turns testManifest's plain cache into one of k views.
func withViews(m *Manifest, k int, spec string, seed uint64) *Manifest {
	m.Format, m.Views, m.Augment = FormatVersion, k, &AugmentRef{Spec: spec, Seed: seed}
	m.Fingerprint = Fingerprint(m.FingerprintInput())
	return m
}

// A cache of views round-trips, resumes after a lost chunk, and its arrays
// are .npy files of shape [N,K,D] and [N,K,C,h,w] that NumPy reads as such.
func TestViewsRoundTrip(t *testing.T) {
	t.Parallel()
	const n, dim, k = 7, 3, 4
	dir := filepath.Join(t.TempDir(), "cache")
	m := withViews(testManifest(n, dim, 3, []int{2, 2, 3}), k, "flip,crop=0.5", 1)
	w, err := Create(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	pending := w.Manifest().Pending()
	fill(t, w, pending[:1], 2)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("opened an unfinished cache")
	}
	w, err = Resume(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, w, w.Manifest().Pending(), 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Views() != k {
		t.Fatalf("Views() = %d", c.Views())
	}
	f, l, mp := rowValues(c.Manifest, 0, n)
	want := make([]uint16, len(mp))
	F32ToF16(want, mp)
	if !slices.Equal(c.Features, f) || !slices.Equal(c.Labels, l) || !slices.Equal(c.Maps, want) {
		t.Error("features, labels or maps differ")
	}
	if got := c.FeatureView(5, 2); !slices.Equal(got, f[(5*k+2)*dim:(5*k+3)*dim]) {
		t.Errorf("FeatureView(5, 2) = %v", got)
	}
	if got := len(c.Feature(5)); got != k*dim {
		t.Errorf("Feature(5) has %d values, want %d", got, k*dim)
	}
	if got := len(c.Map(5)); got != k*c.MapLen() {
		t.Errorf("Map(5) has %d values, want %d", got, k*c.MapLen())
	}
	for _, x := range []struct {
		file, descr string
	}{
		{FeaturesFile, "'descr': '<f4', 'fortran_order': False, 'shape': (7, 4, 3), "},
		{LabelsFile, "'descr': '<i4', 'fortran_order': False, 'shape': (7,), "},
		{MapsFile, "'descr': '<f2', 'fortran_order': False, 'shape': (7, 4, 2, 2, 3), "},
	} {
		b, err := os.ReadFile(filepath.Join(dir, x.file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "\x93NUMPY") || !strings.Contains(string(b[:128]), "{"+x.descr+"}") {
			t.Errorf("%s header %q, want the dict {%s}", x.file, b[:64], x.descr)
		}
	}
}

// The fingerprint of a plain cache is the one it had before views; views,
// their augmentation and seed each change it; the base fingerprint ignores
// them.
func TestFingerprintViews(t *testing.T) {
	t.Parallel()
	plain := testManifest(4, 2, 2, nil)
	fp := plain.Fingerprint
	if got := Fingerprint(plain.FingerprintInput()); got != fp {
		t.Fatalf("plain FingerprintInput gives %s, want %s", got, fp)
	}
	one := plain.FingerprintInput()
	one.Views, one.AugmentSpec, one.AugmentSeed = 1, "flip", 3
	if Fingerprint(one) != fp {
		t.Error("one view changed the fingerprint of a plain cache")
	}
	seen := map[string]string{fp: "plain"}
	for _, tc := range []struct {
		desc string
		k    int
		spec string
		seed uint64
	}{
		{"4 views flip", 4, "flip", 1},
		{"2 views flip", 2, "flip", 1},
		{"4 views flip,crop", 4, "flip,crop=0.5", 1},
		{"4 views flip seed 2", 4, "flip", 2},
	} {
		m := withViews(testManifest(4, 2, 2, nil), tc.k, tc.spec, tc.seed)
		if prev, ok := seen[m.Fingerprint]; ok {
			t.Errorf("%s: same fingerprint as %s", tc.desc, prev)
		}
		seen[m.Fingerprint] = tc.desc
		if m.BaseFingerprint() != fp {
			t.Errorf("%s: base fingerprint %s, want the plain one %s", tc.desc, m.BaseFingerprint(), fp)
		}
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", tc.desc, err)
		}
	}
}

func TestValidateViews(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		mod  func(*Manifest)
		want string
	}{
		{"one view", func(m *Manifest) { m.Views = 1 }, "views 1"},
		{"too many", func(m *Manifest) { m.Views = MaxViews + 1 }, "views 65"},
		{"negative", func(m *Manifest) { m.Views = -2 }, "views -2"},
		{"no augmentation", func(m *Manifest) { m.Views, m.Augment = 3, nil }, "without an augmentation"},
		{"augmentation without views", func(m *Manifest) { m.Views = 0 }, "augmentation without views"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			m := withViews(testManifest(4, 2, 2, nil), 3, "flip", 1)
			tc.mod(m)
			if err := m.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error with %q", err, tc.want)
			}
		})
	}
}
