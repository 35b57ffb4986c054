package dataset

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/internal/progress"
)

// fakeSource lists counts[c] items per class without files.
func fakeSource(counts map[string]int) *Source {
	src := &Source{Dir: "/nowhere"}
	for c := range counts {
		src.Classes = append(src.Classes, c)
	}
	slices.Sort(src.Classes)
	for label, c := range src.Classes {
		for i := range counts[c] {
			src.Items = append(src.Items, Item{Path: fmt.Sprintf("%s/%04d.png", c, i), Label: label, ModTime: time.Unix(0, 0)})
		}
	}
	return src
}

func TestSplit(t *testing.T) {
	t.Parallel()
	src := fakeSource(map[string]int{"a": 10, "b": 3, "c": 2, "d": 101, "e": 7})
	for _, val := range []float64{0.2, 0.5, 0.01, 0.99} {
		t.Run(fmt.Sprint(val), func(t *testing.T) {
			train, v, err := Split(src, val, 42)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.IsSorted(train) || !slices.IsSorted(v) {
				t.Error("indices not sorted")
			}
			all := append(append([]int(nil), train...), v...)
			slices.Sort(all)
			for i, x := range all {
				if x != i {
					t.Fatalf("train ∪ val is not every item once: %v", all)
				}
			}
			counts := src.ClassCounts()
			valCounts := make([]int, len(counts))
			for _, i := range v {
				valCounts[src.Items[i].Label]++
			}
			for c, n := range counts {
				want := min(max(int(math.Round(val*float64(n))), 1), n-1)
				if valCounts[c] != want {
					t.Errorf("class %s: %d of %d in validation, want %d", src.Classes[c], valCounts[c], n, want)
				}
			}
			train2, v2, _ := Split(src, val, 42)
			if !reflect.DeepEqual(train, train2) || !reflect.DeepEqual(v, v2) {
				t.Error("same seed, different split")
			}
		})
	}
	_, v1, _ := Split(src, 0.2, 1)
	_, v2, _ := Split(src, 0.2, 2)
	if reflect.DeepEqual(v1, v2) {
		t.Error("seeds 1 and 2 give the same split")
	}
}

// TestSplitStable checks that a class's split depends only on that class:
// adding a class or images to another class leaves it as it was.
func TestSplitStable(t *testing.T) {
	t.Parallel()
	valPaths := func(src *Source, class string) []string {
		_, v, err := Split(src, 0.3, 7)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, i := range v {
			if p := src.Items[i].Path; strings.HasPrefix(p, class+"/") {
				out = append(out, p)
			}
		}
		return out
	}
	before := valPaths(fakeSource(map[string]int{"cat": 20, "dog": 30}), "dog")
	after := valPaths(fakeSource(map[string]int{"ant": 5, "cat": 27, "dog": 30}), "dog")
	if !reflect.DeepEqual(before, after) {
		t.Errorf("dog's validation images changed:\n%v\n%v", before, after)
	}
}

func TestSplitErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc string
		src  *Source
		val  float64
		want string
	}{
		{"too small", fakeSource(map[string]int{"cat": 5, "dog": 1, "emu": 0, "fox": 2}), 0.2, `too small: "dog" (1), "emu" (0)`},
		{"val 0", fakeSource(map[string]int{"cat": 5, "dog": 5}), 0, "fraction 0"},
		{"val 1", fakeSource(map[string]int{"cat": 5, "dog": 5}), 1, "fraction 1"},
		{"val NaN", fakeSource(map[string]int{"cat": 5, "dog": 5}), math.NaN(), "fraction NaN"},
		{"unlabelled", &Source{Items: []Item{{Path: "x.png", Label: -1}}}, 0.2, "no classes"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, _, err := Split(tc.src, tc.val, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestCopyItems(t *testing.T) {
	t.Parallel()
	dir := makeDataset(t, map[string]int{"cat/a.png": 2, "cat/sub/b.png": 2, "dog/c.png": 2, "dog/d.png": 2})
	src, err := Open(dir, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	p := &progress.Recorder{}
	linked, copied, err := CopyItems(context.Background(), src, []int{0, 1, 3}, out, p)
	if err != nil {
		t.Fatal(err)
	}
	if linked+copied != 3 || p.Added != 3 {
		t.Errorf("linked %d copied %d progress %d, want 3 in all", linked, copied, p.Added)
	}
	for _, i := range []int{0, 1, 3} {
		a, err1 := os.Stat(src.Path(i))
		b, err2 := os.Stat(filepath.Join(out, filepath.FromSlash(src.Items[i].Path)))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if linked == 3 && !os.SameFile(a, b) {
			t.Errorf("item %d: not a hard link", i)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "dog", "c.png")); !os.IsNotExist(err) {
		t.Errorf("item 2 was copied too: %v", err)
	}
	if _, _, err := CopyItems(context.Background(), src, []int{0}, out, nil); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("existing file: %v", err)
	}
	// The copy fallback.
	out2 := filepath.Join(t.TempDir(), "copy")
	if err := copyFile(src.Path(2), filepath.Join(out2+"x")); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src.Path(2))
	b, _ := os.ReadFile(out2 + "x")
	if string(a) != string(b) {
		t.Error("copy differs")
	}
}
