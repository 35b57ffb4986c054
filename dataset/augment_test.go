package dataset

import (
	"context"
	"errors"
	"image"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseAugment(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Augment
		str  string
		err  string
	}{
		{in: "", want: Augment{}, str: ""},
		{in: "flip", want: Augment{Flip: true}, str: "flip"},
		{in: "crop,flip", want: Augment{Flip: true, Crop: DefaultCropScale}, str: "flip,crop=0.5"},
		{in: " flip , crop=0.3 ,jitter", want: Augment{Flip: true, Crop: 0.3, Jitter: DefaultJitter}, str: "flip,crop=0.3,jitter=0.2"},
		{in: "jitter=0.4", want: Augment{Jitter: 0.4}, str: "jitter=0.4"},
		{in: "flop", err: `unknown augmentation "flop"`},
		{in: "flip,flip", err: "flip given twice"},
		{in: "flip,", err: "empty item"},
		{in: "crop=1", err: "crop=1, want a number between 0 and 1"},
		{in: "crop=0", err: "crop=0, want"},
		{in: "jitter=x", err: "jitter=x, want"},
		{in: "flip=1", err: "flip takes no value"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseAugment(tc.in)
			if tc.err != "" {
				if !errors.Is(err, ErrAugment) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseAugment(%q) = %v, want an error with %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseAugment(%q) = %+v, %v, want %+v", tc.in, got, err, tc.want)
			}
			if got.String() != tc.str {
				t.Errorf("String() = %q, want %q", got.String(), tc.str)
			}
			if back, err := ParseAugment(got.String()); err != nil || back != got {
				t.Errorf("String() does not parse back: %+v, %v", back, err)
			}
		})
	}
}

// Draw is a pure function of seed, key and view; view 0 is the plain image
// and the draws vary with each input.
func TestDrawReproducible(t *testing.T) {
	t.Parallel()
	a := Augment{Flip: true, Crop: 0.3, Jitter: 0.3}
	b := image.Rect(0, 0, 40, 30)
	if got := a.Draw(1, "cat/1.png", 0, b); got != (View{Crop: b, Brightness: 1, Contrast: 1}) {
		t.Errorf("view 0 = %+v, want the plain image", got)
	}
	seen := map[View]string{}
	for _, in := range []struct {
		seed uint64
		key  string
		v    int
	}{{1, "cat/1.png", 1}, {1, "cat/1.png", 2}, {2, "cat/1.png", 1}, {1, "cat/2.png", 1}} {
		vw := a.Draw(in.seed, in.key, in.v, b)
		if vw != a.Draw(in.seed, in.key, in.v, b) {
			t.Errorf("%+v drawn twice differs", in)
		}
		if !vw.Crop.In(b) || vw.Crop.Empty() || vw.Crop.Dx()*vw.Crop.Dy() < int(0.3*40*30)-40 {
			t.Errorf("%+v: crop %v outside %v or too small", in, vw.Crop, b)
		}
		if vw.Brightness < 0.7 || vw.Brightness > 1.3 || vw.Contrast < 0.7 || vw.Contrast > 1.3 {
			t.Errorf("%+v: jitter %+v out of range", in, vw)
		}
		if prev, ok := seen[vw]; ok {
			t.Errorf("%+v draws the same view as %s", in, prev)
		}
		seen[vw] = "earlier"
	}
}

// ApplyView: view 0 is Resize's result; a flip mirrors the resized pixels.
func TestApplyView(t *testing.T) {
	t.Parallel()
	src := image.NewRGBA(image.Rect(0, 0, 9, 7))
	copy(src.Pix, testImage(9, 7, 3).Pix)
	var scratch []uint8
	plain := Resize(src, 5, Bilinear).(*image.RGBA)
	got := ApplyView(src, View{Crop: src.Bounds(), Brightness: 1, Contrast: 1}, 5, Bilinear, &scratch)
	if g, ok := got.(*image.RGBA); !ok || !slices.Equal(g.Pix, plain.Pix) {
		t.Fatal("view 0 differs from Resize")
	}
	flipped := ApplyView(src, View{Crop: src.Bounds(), Flip: true, Brightness: 1, Contrast: 1}, 5, Bilinear, &scratch).(*image.RGBA)
	for y := range 5 {
		for x := range 5 {
			if flipped.RGBAAt(x, y) != plain.RGBAAt(4-x, y) {
				t.Fatalf("pixel (%d,%d) = %v, want the mirror's %v", x, y, flipped.RGBAAt(x, y), plain.RGBAAt(4-x, y))
			}
		}
	}
	crop := image.Rect(2, 1, 6, 5)
	cropped := ApplyView(src, View{Crop: crop, Brightness: 1, Contrast: 1}, 5, Bilinear, &scratch).(*image.RGBA)
	if want := Resize(src.SubImage(crop), 5, Bilinear).(*image.RGBA); !slices.Equal(cropped.Pix, want.Pix) {
		t.Error("a crop is not the resized sub-image")
	}
	dark := ApplyView(src, View{Crop: src.Bounds(), Brightness: 0.5, Contrast: 1}, 5, Bilinear, &scratch).(*image.RGBA)
	if p, q := dark.RGBAAt(1, 1), plain.RGBAAt(1, 1); int(p.R) > int(q.R)/2+1 || int(p.R) < int(q.R)/2-1 {
		t.Errorf("brightness 0.5: R %d from %d", p.R, q.R)
	}
}

// A loader with views yields each item's views in turn, view 0 equal to a
// plain loader's image, and the same tensors with any worker count.
func TestLoaderViews(t *testing.T) {
	t.Parallel()
	dir := makeDataset(t, map[string]int{"a/1.png": 12, "a/2.png": 9, "b/1.png": 10})
	src, err := Open(dir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	load := func(s LoaderSettings) ([]float32, []Batch) {
		l, err := NewLoader(src, nil, s)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var all []float32
		var batches []Batch
		buf := make([]float32, l.BatchLen())
		for {
			b, err := l.Next(context.Background(), buf)
			if errors.Is(err, io.EOF) {
				return all, batches
			}
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, buf[:b.Count*l.ImageLen()]...)
			batches = append(batches, b)
		}
	}
	aug := Augment{Flip: true, Crop: 0.5, Jitter: 0.2}
	plain, _ := load(LoaderSettings{Size: 8, Batch: 2})
	one, batches := load(LoaderSettings{Size: 8, Batch: 2, Views: 3, Augment: aug, AugmentSeed: 5, Workers: 1})
	many, _ := load(LoaderSettings{Size: 8, Batch: 2, Views: 3, Augment: aug, AugmentSeed: 5, Workers: 4})
	if !slices.Equal(one, many) {
		t.Error("views depend on the worker count")
	}
	if len(batches) != 5 || batches[1].Start != 2 || !slices.Equal(batches[1].Views, []int{2, 0}) || !slices.Equal(batches[1].Indices, []int{0, 1}) {
		t.Errorf("batches %+v", batches)
	}
	n := 3 * 8 * 8
	for i := range 3 {
		if !slices.Equal(one[3*i*n:(3*i+1)*n], plain[i*n:(i+1)*n]) {
			t.Errorf("item %d: view 0 differs from the plain image", i)
		}
		if slices.Equal(one[(3*i+1)*n:(3*i+2)*n], plain[i*n:(i+1)*n]) {
			t.Errorf("item %d: view 1 is the plain image", i)
		}
	}
	for _, s := range []LoaderSettings{{Views: 2}, {Views: MaxViews + 1, Augment: aug}, {Views: 2, Augment: Augment{Crop: 1.5}}} {
		if _, err := NewLoader(src, nil, s); err == nil {
			t.Errorf("NewLoader accepted %+v", s)
		}
	}
}

// FuzzParseAugment: whatever ParseAugment accepts, its String parses back
// to the same set, and Validate accepts it.
func FuzzParseAugment(f *testing.F) {
	for _, s := range []string{"", "flip", "crop", "flip,crop=0.3,jitter", "jitter=0.99", "crop=1e-3", "flip,,", "crop=NaN", "crop=0x1p-2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAugment(s)
		if err != nil {
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("ParseAugment(%q) = %+v, which Validate refuses: %v", s, a, err)
		}
		back, err := ParseAugment(a.String())
		if err != nil || back != a {
			t.Fatalf("ParseAugment(%q) = %+v; its String %q parses to %+v, %v", s, a, a.String(), back, err)
		}
	})
}
