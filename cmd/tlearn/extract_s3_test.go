package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tlearn/tlearn/extractor/cache"
	"github.com/tlearn/tlearn/internal/ortlib/ortlibtest"
	"github.com/tlearn/tlearn/internal/testutil/fixtures"
	"github.com/tlearn/tlearn/internal/testutil/s3test"
	"github.com/tlearn/tlearn/models"
)

// s3Fixture is the tiny prepared model and a dataset folder (PNGs and
// JPEGs, a non-image, a hidden file), uploaded as is into a bucket of a
// running versitygw; the AWS variables hold the server's keys.
func s3Fixture(t *testing.T) (srv *s3test.Server, model, data, url string) {
	t.Helper()
	srv = s3test.Start(t)
	srv.SetCredentials(t)
	ortlibtest.Init(t)
	root := t.TempDir()
	model = filepath.Join(root, "model")
	if _, err := models.WriteTinyPrepared(model, 1); err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(root, "data")
	writePNGs(t, data, "cat", 6)
	writePNGs(t, data, "dog", 5)
	for i := range 3 {
		m := image.NewRGBA(image.Rect(0, 0, 30+i, 22))
		for p := range m.Pix {
			m.Pix[p] = uint8(p*5 + i*17)
		}
		for y := range 22 {
			for x := range 30 + i {
				m.SetRGBA(x, y, color.RGBA{m.Pix[m.PixOffset(x, y)], uint8(x * 8), uint8(y * 11), 255})
			}
		}
		var b bytes.Buffer
		if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 85}); err != nil {
			t.Fatal(err)
		}
		fixtures.WriteFile(t, filepath.Join(data, "dog", "photos", string(rune('p'+i))+".jpg"), b.Bytes())
	}
	fixtures.WriteFile(t, filepath.Join(data, "cat", "README.txt"), []byte("not an image"))
	fixtures.WriteFile(t, filepath.Join(data, ".DS_Store"), []byte("junk"))
	srv.CreateBucket(t, "tlearn-data")
	srv.UploadDir(t, data, "tlearn-data", "sets/pets")
	return srv, model, data, srv.URL("tlearn-data", "sets/pets")
}

// TestExtractFromS3: the caches extracted from a bucket of versitygw and
// from the same images in a folder hold byte-identical arrays, and their
// manifests differ only in the source and the times.
func TestExtractFromS3(t *testing.T) {
	_, model, data, url := s3Fixture(t)
	root := t.TempDir()
	fromS3, fromDir := filepath.Join(root, "s3.cache"), filepath.Join(root, "dir.cache")
	more := []string{"--val", "0.4", "--seed", "2", "--maps"}
	code, _, stderr := runTlearn(t, extractArgs(model, url, fromS3, more...)...)
	if code != 0 {
		t.Fatalf("extract --data %s: exit %d\n%s", url, code, stderr)
	}
	for _, want := range []string{"cat/README.txt: not an image", filepath.Join(fromS3, "train") + ": 9 images"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code, _, stderr := runTlearn(t, extractArgs(model, data, fromDir, more...)...); code != 0 {
		t.Fatalf("extract --data %s: exit %d\n%s", data, code, stderr)
	}
	for _, part := range []string{"train", "val"} {
		for _, f := range []string{"features.npy", "labels.npy", "maps.npy"} {
			a, errA := os.ReadFile(filepath.Join(fromS3, part, f))
			b, errB := os.ReadFile(filepath.Join(fromDir, part, f))
			if errA != nil || errB != nil || len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("%s/%s: from s3 and from the folder differ (%v, %v; %d and %d bytes)", part, f, errA, errB, len(a), len(b))
			}
		}
		ms, err := cache.ReadManifest(filepath.Join(fromS3, part))
		if err != nil {
			t.Fatal(err)
		}
		md, err := cache.ReadManifest(filepath.Join(fromDir, part))
		if err != nil {
			t.Fatal(err)
		}
		if ms.DataDir != url {
			t.Errorf("%s: the manifest records the source %q, want the URL %q", part, ms.DataDir, url)
		}
		if md.DataDir != data {
			t.Errorf("%s: the manifest records the source %q, want %q", part, md.DataDir, data)
		}
		for _, m := range []*cache.Manifest{ms, md} {
			m.DataDir, m.Created, m.Updated = "", time.Time{}, time.Time{}
			for i := range m.Items {
				m.Items[i].ModTime = time.Time{}
			}
		}
		if !reflect.DeepEqual(ms, md) {
			t.Errorf("%s: the manifests differ beyond the source and the times:\n%+v\n%+v", part, ms, md)
		}
	}

	// A second run from the bucket finds its cache up to date.
	if code, _, stderr := runTlearn(t, extractArgs(model, url, fromS3, more...)...); code != 0 || !strings.Contains(stderr, "up to date") {
		t.Errorf("second run: exit %d\n%s", code, stderr)
	}
}

// TestExtractFromS3BadInput: a bucket that does not exist, wrong keys and
// an unsupported scheme each stop extract with an error that names the
// URL, before anything is written: no cache folder, an earlier cache
// unchanged.
func TestExtractFromS3BadInput(t *testing.T) {
	srv, model, _, url := s3Fixture(t)
	root := t.TempDir()
	earlier := filepath.Join(root, "earlier")
	if code, _, stderr := runTlearn(t, extractArgs(model, url, earlier, "--val", "0.4")...); code != 0 {
		t.Fatalf("extract: exit %d\n%s", code, stderr)
	}
	before := fixtures.Tree(t, earlier)
	for _, tc := range []struct {
		desc, data string
		keys       [2]string
		want       []string
	}{
		{desc: "a bucket that does not exist", data: srv.URL("no-such-bucket", "sets/pets"), want: []string{"s3://no-such-bucket/sets/pets", "bucket no-such-bucket does not exist"}},
		{desc: "wrong credentials", data: url, keys: [2]string{srv.AccessKey, "not-the-secret"}, want: []string{"s3://tlearn-data/sets/pets", "access denied", "AWS_SECRET_ACCESS_KEY"}},
		{desc: "an unsupported scheme", data: "azblob://tlearn-data/sets/pets", want: []string{"azblob://tlearn-data/sets/pets", `unsupported URL scheme "azblob"`}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if tc.keys[0] != "" {
				s3test.SetKeys(t, tc.keys[0], tc.keys[1])
			}
			fresh := filepath.Join(root, "fresh")
			for _, out := range []string{fresh, earlier} {
				code, _, stderr := runTlearn(t, extractArgs(model, tc.data, out, "--val", "0.4")...)
				if code == 0 {
					t.Fatalf("--cache %s: exit 0\n%s", out, stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("--cache %s: stderr lacks %q:\n%s", out, w, stderr)
					}
				}
				if strings.Contains(stderr, "not-the-secret") {
					t.Errorf("the error repeats the secret:\n%s", stderr)
				}
			}
			entries, _ := os.ReadDir(root)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if !reflect.DeepEqual(names, []string{"earlier"}) {
				t.Errorf("%s holds %q after the failures, want only the earlier cache", root, names)
			}
			if after := fixtures.Tree(t, earlier); !reflect.DeepEqual(after, before) {
				t.Errorf("the earlier cache changed")
			}
		})
	}
}

// TestExtractFromFileURL reads a folder through fileblob (file://), with
// no server: the arrays are those of the folder itself.
func TestExtractFromFileURL(t *testing.T) {
	model, data := tinyModelData(t)
	root := t.TempDir()
	fromURL, fromDir := filepath.Join(root, "url.cache"), filepath.Join(root, "dir.cache")
	u := "file://" + filepath.ToSlash(data)
	if code, _, stderr := runTlearn(t, extractArgs(model, u, fromURL, "--maps")...); code != 0 {
		t.Fatalf("extract --data %s: exit %d\n%s", u, code, stderr)
	}
	if code, _, stderr := runTlearn(t, extractArgs(model, data, fromDir, "--maps")...); code != 0 {
		t.Fatalf("extract --data %s: exit %d\n%s", data, code, stderr)
	}
	for _, f := range []string{"features.npy", "labels.npy", "maps.npy"} {
		a, _ := os.ReadFile(filepath.Join(fromURL, f))
		b, _ := os.ReadFile(filepath.Join(fromDir, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s: from %s and from the folder differ", f, u)
		}
	}
	if m, err := cache.ReadManifest(fromURL); err != nil || m.DataDir != u {
		t.Errorf("the manifest records %q (%v), want %q", m.DataDir, err, u)
	}
	// A cache inside the file:// folder would become part of its dataset.
	inside := filepath.Join(data, "cat", "cache")
	if code, _, stderr := runTlearn(t, extractArgs(model, u, inside)...); code == 0 || !strings.Contains(stderr, "lies inside") {
		t.Errorf("a cache inside the file:// dataset: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(inside); err == nil {
		t.Errorf("the refused extract made %s", inside)
	}
	if code, _, stderr := runTlearn(t, "extract", "--plan", "--data", u, "--cache", inside); code == 0 || !strings.Contains(stderr, "lies inside") {
		t.Errorf("a plan inside the file:// dataset: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(inside); err == nil {
		t.Errorf("the refused plan made %s", inside)
	}
}

// TestShardsFromS3Plan: the runbooks' job on a bucket. `extract --plan`
// lists the bucket once; three shards read that listing (not the bucket's)
// and their merge is the single run from the same images in a folder,
// byte for byte.
func TestShardsFromS3Plan(t *testing.T) {
	_, model, data, url := s3Fixture(t)
	root := t.TempDir()
	single, sharded := filepath.Join(root, "single"), filepath.Join(root, "sharded")
	more := []string{"--val", "0.4", "--seed", "2", "--maps"}
	mustTlearn(t, extractArgs(model, data, single, more...)...)
	mustTlearn(t, "extract", "--plan", "--data", url, "--cache", sharded, "--val", "0.4", "--seed", "2")
	for i := range 3 {
		code, _, stderr := runTlearn(t, extractArgs(model, url, sharded, append(more, "--shard", fmt.Sprintf("%d/3", i))...)...)
		if code != 0 {
			t.Fatalf("shard %d of 3 from %s: exit %d\n%s", i, url, code, stderr)
		}
	}
	if code, _, stderr := runTlearn(t, "cache", "merge", sharded); code != 0 {
		t.Fatalf("merge: exit %d\n%s", code, stderr)
	}
	for _, part := range []string{"train", "val"} {
		for _, f := range []string{"features.npy", "labels.npy", "maps.npy"} {
			a, errA := os.ReadFile(filepath.Join(sharded, part, f))
			b, errB := os.ReadFile(filepath.Join(single, part, f))
			if errA != nil || errB != nil || len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("%s/%s: merged from the bucket's shards and the folder's single run differ (%v, %v; %d and %d bytes)", part, f, errA, errB, len(a), len(b))
			}
		}
		if m, err := cache.ReadManifest(filepath.Join(sharded, part)); err != nil || m.DataDir != url {
			t.Errorf("%s: the merged manifest's source is %q (%v), want %q", part, m.DataDir, err, url)
		}
	}
}
