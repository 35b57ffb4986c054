package extractor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"strings"
	"sync"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/extractor/cache"
)

// checkWorkers is the parallelism of the check pass: it waits on file
// reads far more than on the CPU.
const checkWorkers = 4

// checkBlock is how many images the check pass handles between progress
// reports and cancellation checks.
const checkBlock = 64

// maxListed is how many bad files an error names.
const maxListed = 5

// check finds the images of listing that cannot be decoded, before a new
// cache is allocated, so that N is known up front. Most images pass a
// cheap test (quickCheck); the others are decoded in full and fail only if
// the decoder fails. Without SkipBad any bad image is an error that names
// the files and wraps the first one's *dataset.DecodeError; with it the
// result maps each bad path to the reason.
func (e *Extractor) check(ctx context.Context, src *dataset.Source, listing []cache.Item, byPath map[string]int, s Settings) (map[string]string, error) {
	e.prog.Start("check", len(listing), 0)
	defer e.prog.Finish()
	errs := make([]*dataset.DecodeError, len(listing))
	var fatal error // a bucket that cannot be read: no image's fault
	var fatalOnce sync.Once
	for start := 0; start < len(listing); start += checkBlock {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		block := listing[start:min(start+checkBlock, len(listing))]
		var wg sync.WaitGroup
		next := make(chan int)
		for range min(checkWorkers, len(block)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range next {
					it := block[k]
					i := byPath[it.Path]
					if quickCheck(ctx, src, i, it.Size) {
						continue
					}
					if _, err := src.Decode(i); err != nil {
						var de *dataset.DecodeError
						if !errors.As(err, &de) {
							fatalOnce.Do(func() { fatal = err })
							continue
						}
						errs[start+k] = de
					}
				}
			}()
		}
		for k := range block {
			next <- k
		}
		close(next)
		wg.Wait()
		if fatal != nil {
			return nil, fmt.Errorf("extractor: %w", fatal)
		}
		e.prog.Add(len(block))
	}
	bad := map[string]string{}
	var first *dataset.DecodeError
	var names []string
	for k, de := range errs {
		if de == nil {
			continue
		}
		bad[listing[k].Path] = de.Err.Error()
		if first == nil {
			first = de
		}
		if len(names) < maxListed {
			names = append(names, de.Path)
		}
	}
	if first != nil && !s.SkipBad {
		more := ""
		if len(bad) > 1 {
			more = fmt.Sprintf(" (%d bad images: %s", len(bad), strings.Join(names, ", "))
			if len(bad) > len(names) {
				more += ", ..."
			}
			more += ")"
		}
		return nil, fmt.Errorf("extractor: %w%s; fix or remove them", first, more)
	}
	return bad, nil
}

// Trailers that complete JPEG and PNG files end with. Go's decoders read
// up to them, so a file cut short fails to decode although its header
// parses; a file that ends otherwise (truncated, or with bytes appended
// after the image) gets a full decode in the check pass.
var (
	jpegEnd = []byte{0xff, 0xd9}                                             // EOI marker
	pngEnd  = []byte{0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82} // empty IEND chunk
)

// quickCheck reports whether item i of src is very likely decodable,
// reading only its header and last bytes: a JPEG or PNG whose header
// parses, within the pixel limit, that ends with its format's trailer.
// False means "decode it to find out", not "bad". In object storage the
// reads are ranged requests, of 64 KiB at least: one request for most
// images, where a full decode would fetch the whole object and spend the
// CPU of decoding it (BenchmarkCheckS3).
func quickCheck(ctx context.Context, src *dataset.Source, i int, size int64) (ok bool) {
	if size <= 0 {
		return false
	}
	defer func() {
		// Decoders of outside bytes have panicked on crafted headers; the
		// full decode, which recovers, then gives the reason.
		if recover() != nil {
			ok = false
		}
	}()
	f, err := src.OpenItem(ctx, i)
	if err != nil {
		return false
	}
	defer f.Close()
	cfg, format, err := image.DecodeConfig(bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 4096))
	if err != nil || cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > dataset.DefaultMaxPixels {
		return false
	}
	var end []byte
	switch format {
	case "jpeg":
		end = jpegEnd
	case "png":
		end = pngEnd
	default:
		return false
	}
	if size < int64(len(end)) {
		return false
	}
	tail := make([]byte, len(end))
	if _, err := f.ReadAt(tail, size-int64(len(end))); err != nil {
		return false
	}
	return bytes.Equal(tail, end)
}
