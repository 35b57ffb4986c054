package blobsrc_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/url"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/dataset"
	_ "github.com/tlearn/tlearn/dataset/blobsrc" // s3://, gs:// and file:// for OpenData
)

// OpenData lists a URL of object storage as Open lists a folder; here a
// file:// URL, which needs no server (s3://bucket/prefix?endpoint=... reads
// the same layout from an S3-compatible store).
func Example() {
	dir, _ := os.MkdirTemp("", "blobsrc-example")
	defer os.RemoveAll(dir)
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 4, 4)))
	for _, p := range []string{"cat/1.png", "cat/2.png", "dog/1.png", "dog/notes.txt"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), b.Bytes(), 0o644)
	}
	u := (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
	src, err := dataset.OpenData(context.Background(), u, dataset.Settings{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	fmt.Println(src.Classes)
	for _, it := range src.Items {
		fmt.Println(it.Label, it.Path)
	}
	fmt.Println(src.Skipped)
	img, err := src.Decode(2)
	fmt.Println(img.Bounds(), err)
	// Output:
	// [cat dog]
	// 0 cat/1.png
	// 0 cat/2.png
	// 1 dog/1.png
	// [{dog/notes.txt not an image (extension .txt)}]
	// (0,0)-(4,4) <nil>
}
