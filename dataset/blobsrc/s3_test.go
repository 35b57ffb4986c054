package blobsrc_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/testutil/s3test"
)

// The tests against versitygw set the AWS variables (t.Setenv): none of
// them runs in parallel.

func TestS3ListsAndReadsAsOpen(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetCredentials(t)
	dir := t.TempDir()
	trickyTree(t, dir, false)
	srv.CreateBucket(t, "images")
	srv.UploadDir(t, dir, "images", "sets/tricky")
	// Folder markers, as S3 consoles make them, change nothing.
	srv.Put(t, "images", "sets/tricky/", nil)
	srv.Put(t, "images", "sets/tricky/cat/", nil)
	srv.Put(t, "images", "sets/tricky/cat/deep/", nil)
	// Neither do objects beside the prefix.
	srv.Put(t, "images", "sets/tricky-other/cat/a.png", img(t, "png", 8, 8, 1))
	srv.Put(t, "images", "sets/other.png", img(t, "png", 8, 8, 1))

	want, err := dataset.Open(dir, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	u := srv.URL("images", "sets/tricky")
	got, err := dataset.OpenData(context.Background(), u, dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	sameListing(t, got, want, false)
	if got.Dir != u {
		t.Errorf("Dir %q, want %q", got.Dir, u)
	}
	if p, w := got.Path(0), "s3://images/sets/tricky/"+got.Items[0].Path; p != w {
		t.Errorf("Path(0) = %q, want %q", p, w)
	}
	sameImages(t, want, got)
	sameBatches(t, want, got)

	again, err := dataset.FromListing(context.Background(), got.Listing(), dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	sameImages(t, want, again)

	// A prefix with a trailing slash is the same prefix.
	slash, err := dataset.OpenData(context.Background(), srv.URL("images", "sets/tricky/"), dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer slash.Close()
	sameListing(t, slash, want, false)
}

// An object deleted after the listing is a bad image (a *DecodeError), as
// a deleted file is.
func TestS3ReadErrors(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetCredentials(t)
	srv.CreateBucket(t, "dset")
	for _, k := range []string{"cat/a.png", "cat/b.png", "dog/a.png"} {
		srv.Put(t, "dset", "d/"+k, img(t, "png", 8, 8, len(k)))
	}
	src, err := dataset.OpenData(context.Background(), srv.URL("dset", "d"), dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srv.Delete(t, "dset", "d/cat/b.png")
	_, err = src.Decode(1)
	var de *dataset.DecodeError
	if !errors.As(err, &de) || de.Path != "s3://dset/d/cat/b.png" || !strings.Contains(err.Error(), "deleted since it was listed") {
		t.Fatalf("a deleted object: %v, want a *DecodeError naming s3://dset/d/cat/b.png", err)
	}
}

// A server that goes away during a run is no image's fault: a Loader that
// skips bad images stops with the error instead of dropping the images.
func TestS3ServerGoneIsNotABadImage(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetCredentials(t)
	srv.CreateBucket(t, "dset")
	for _, k := range []string{"cat/a.png", "cat/b.png", "dog/a.png", "dog/b.png"} {
		srv.Put(t, "dset", "d/"+k, img(t, "png", 8, 8, len(k)))
	}
	src, err := dataset.OpenData(context.Background(), srv.URL("dset", "d"), dataset.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	srv.Stop()
	l, err := dataset.NewLoader(src, nil, dataset.LoaderSettings{Size: 8, Batch: 2, SkipBad: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := l.Next(context.Background(), make([]float32, l.BatchLen()))
	var de *dataset.DecodeError
	if err == nil || errors.As(err, &de) || !strings.Contains(err.Error(), "s3://dset/d/cat/") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Next with the server gone: %+v, %v; want an error (no *DecodeError) naming the object", b, err)
	}
}

func TestS3OpenErrors(t *testing.T) {
	srv := s3test.Start(t)
	srv.SetCredentials(t)
	srv.CreateBucket(t, "images")
	srv.Put(t, "images", "flat/a.png", img(t, "png", 8, 8, 1))
	srv.Put(t, "images", "flat/notes.txt", []byte("x"))
	srv.Put(t, "images", "ok/cat/a.png", img(t, "png", 8, 8, 1))
	srv.Put(t, "images", "ok/dog/a.png", img(t, "png", 8, 8, 2))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := s3test.URLAt("http://"+l.Addr().String(), "images", "ok")
	l.Close()

	for _, tc := range []struct {
		desc, data string
		keys       [2]string // the AWS keys, when not the server's
		noRegion   bool      // AWS_REGION unset
		want       []string
	}{
		{desc: "a bucket that does not exist", data: srv.URL("nosuch", "x"), want: []string{"s3://nosuch/x", "bucket nosuch does not exist"}},
		{desc: "a wrong secret", data: srv.URL("images", "ok"), keys: [2]string{srv.AccessKey, "wrong-secret"}, want: []string{"s3://images/ok", "access denied", "AWS_ACCESS_KEY_ID"}},
		{desc: "an unknown access key", data: srv.URL("images", "ok"), keys: [2]string{"nobody", "wrong-secret"}, want: []string{"s3://images/ok", "access denied"}},
		{desc: "an endpoint that does not answer", data: deadURL, want: []string{"s3://images/ok", "cannot reach the storage endpoint"}},
		{desc: "a prefix with no class folders", data: srv.URL("images", "flat"), want: []string{"s3://images/flat", "has 1 images but no class folders"}},
		{desc: "an empty prefix", data: srv.URL("images", "nothing/here"), want: []string{"s3://images/nothing/here", "has no class folders"}},
		{desc: "no region", data: strings.Replace(srv.URL("images", "ok"), "region=us-east-1&", "", 1), keys: [2]string{srv.AccessKey, srv.SecretKey}, noRegion: true, want: []string{"s3://images/ok", "no usable AWS region", "AWS_REGION"}},
		{desc: "an unknown URL parameter", data: srv.URL("images", "ok") + "&colour=blue", want: []string{"s3://images/ok", `unknown query parameter "colour"`}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if tc.keys[0] != "" {
				s3test.SetKeys(t, tc.keys[0], tc.keys[1])
			}
			if tc.noRegion {
				t.Setenv("AWS_REGION", "")
				t.Setenv("AWS_DEFAULT_REGION", "")
			}
			src, err := dataset.OpenData(context.Background(), tc.data, dataset.Settings{})
			if err == nil {
				src.Close()
				t.Fatal("no error")
			}
			t.Log(err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "wrong-secret") {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}
