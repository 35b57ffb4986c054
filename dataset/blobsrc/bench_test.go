package blobsrc_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/testutil/s3test"
)

// photo is a seeded JPEG of w×h with some texture, about the bytes per
// pixel of a camera photo at quality 90.
func photo(t testing.TB, w, h int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 3))
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			n := uint8(rng.IntN(40))
			m.SetRGBA(x, y, color.RGBA{uint8(x) + n, uint8(y) + n, uint8(x+y) + n, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// BenchmarkCheckS3 measures, per image in versitygw on 127.0.0.1, the two
// ways the extractor's check pass can judge an image of a bucket: "quick"
// reads what extractor's quickCheck reads (the header through a 4 KiB
// buffer, then the last 2 bytes, by Source.OpenItem's ranged reads of at
// least 64 KiB), "decode" fetches and decodes the whole object
// (Source.Decode).
func BenchmarkCheckS3(b *testing.B) {
	srv := s3test.Start(b)
	srv.SetCredentials(b)
	srv.CreateBucket(b, "bench")
	sizes := [][2]int{{500, 375}, {1600, 1200}}
	const n = 16
	for _, sz := range sizes {
		for c := range 2 {
			for i := range n / 2 {
				srv.Put(b, "bench", fmt.Sprintf("%dx%d/c%d/%02d.jpg", sz[0], sz[1], c, i), photo(b, sz[0], sz[1], uint64(c*100+i)))
			}
		}
	}
	for _, sz := range sizes {
		src, err := dataset.OpenData(context.Background(), srv.URL("bench", fmt.Sprintf("%dx%d", sz[0], sz[1])), dataset.Settings{})
		if err != nil {
			b.Fatal(err)
		}
		kb := src.Items[0].Size >> 10
		b.Run(fmt.Sprintf("quick/%dx%d/%dKiB", sz[0], sz[1], kb), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				k := i % len(src.Items)
				r, err := src.OpenItem(context.Background(), k)
				if err != nil {
					b.Fatal(err)
				}
				size := src.Items[k].Size
				if _, _, err := image.DecodeConfig(bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 4096)); err != nil {
					b.Fatal(err)
				}
				tail := make([]byte, 2)
				if _, err := r.ReadAt(tail, size-2); err != nil || tail[0] != 0xff || tail[1] != 0xd9 {
					b.Fatalf("tail %x, %v", tail, err)
				}
				r.Close()
			}
		})
		b.Run(fmt.Sprintf("decode/%dx%d/%dKiB", sz[0], sz[1], kb), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				if _, err := src.Decode(i % len(src.Items)); err != nil {
					b.Fatal(err)
				}
			}
		})
		src.Close()
	}
}
