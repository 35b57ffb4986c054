package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Store is object storage as a Source reads it: the objects under one
// bucket prefix, named by their keys relative to the prefix
// ("cat/0001.jpg"). Package dataset/blobsrc provides Stores for s3://,
// gs:// and file:// URLs through gocloud.dev/blob and registers them with
// RegisterStore; dataset itself links no cloud SDK.
type Store interface {
	// List calls fn once for every object under the prefix, in any order,
	// reading the listing page by page.
	List(ctx context.Context, fn func(Object) error) error
	// NewRangeReader reads length bytes of the object key from offset
	// (length < 0: to its end). An object that does not exist is an error
	// wrapping fs.ErrNotExist.
	NewRangeReader(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Close releases the bucket; a second Close does nothing (Source.Close
	// is idempotent through it).
	Close() error
}

// Object is one object of a Store's listing.
type Object struct {
	Key     string // relative to the prefix, slash-separated
	Size    int64
	ModTime time.Time
	// NotRegular, when not empty, says why the object is no regular file
	// (file:// only: "named pipe", "device", "broken symbolic link"); it is
	// listed in Skipped, as Open lists such files of a folder.
	NotRegular string
}

// StoreOpener opens the bucket prefix that a URL names, checking that it
// can be read; its errors name the URL.
type StoreOpener func(ctx context.Context, rawURL string) (Store, error)

var (
	storesMu sync.RWMutex
	stores   = map[string]StoreOpener{}
)

// RegisterStore makes OpenData and FromListing open the URLs of scheme
// ("s3") with open. Package dataset/blobsrc calls it from its init; a
// program that reads datasets from object storage imports it for that.
func RegisterStore(scheme string, open StoreOpener) {
	storesMu.Lock()
	defer storesMu.Unlock()
	stores[scheme] = open
}

// openStore opens the Store of the URL data.
func openStore(ctx context.Context, data string) (Store, error) {
	u, err := url.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", data, err)
	}
	if u.User != nil {
		// The URL is recorded in every cache manifest: keys in it would
		// be copied everywhere.
		return nil, fmt.Errorf("dataset: %s: the URL holds a user name or password: give credentials the storage's own way (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, Application Default Credentials), never in the URL", redact(u))
	}
	storesMu.RLock()
	open := stores[u.Scheme]
	schemes := make([]string, 0, len(stores))
	for s := range stores {
		schemes = append(schemes, s+"://")
	}
	storesMu.RUnlock()
	sort.Strings(schemes)
	switch {
	case open != nil:
		return open(ctx, data)
	case len(schemes) == 0:
		return nil, fmt.Errorf("dataset: %s: this program reads no datasets from object storage (it does not import dataset/blobsrc)", data)
	}
	return nil, fmt.Errorf("dataset: %s: unsupported URL scheme %q: want a folder or a URL of %s", data, u.Scheme, strings.Join(schemes, ", "))
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// displayURL is data without its query (endpoint and region settings),
// the form that image paths in messages start with.
func displayURL(data string) string {
	base, _, _ := strings.Cut(data, "?")
	return strings.TrimSuffix(base, "/")
}

// objectPath is the name of the object rel of the dataset data in
// messages and in DecodeError.Path: data's URL without its query, then rel.
func objectPath(data, rel string) string {
	return displayURL(data) + "/" + rel
}

// openStoreSource lists the Store st of the URL data as Open lists a
// folder: the top level holds one "folder" (key prefix) per class, class
// indices follow the sorted names, images are searched in every folder
// below a class and sorted by path; hidden entries, non-images and objects
// at the top level are listed in Skipped, or refused with Settings.Strict.
// Skipped comes in the order Open finds such files (a folder walk: the
// entries of a folder by name, each sub-folder's content at its name's
// place), so that both list a folder and its upload alike.
func openStoreSource(ctx context.Context, data string, st Store, s Settings) (*Source, error) {
	var objs []Object
	err := st.List(ctx, func(o Object) error {
		objs = append(objs, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	where := displayURL(data)
	if err := checkStoreMarker(ctx, data, st, objs); err != nil {
		return nil, err
	}
	walkOrder(objs)
	src := &Source{Dir: data, maxPixels: s.maxPixels(), store: st}
	// The top level: one entry per name, a class folder if anything lies
	// below it. A folder and a file of one name can both exist in a
	// bucket; the file is then a loose file and the folder a class.
	var looseImages int
	classStart := map[string]int{}
	lastHidden := ""
	for i, o := range objs {
		top, _, isDir := strings.Cut(o.Key, "/")
		switch {
		case o.Key == "":
			// The prefix's own folder marker.
		case top == "":
			src.Skipped = append(src.Skipped, Skipped{Path: o.Key, Reason: "empty folder name in the object key"})
		case strings.HasPrefix(top, "."):
			if top != lastHidden {
				src.Skipped = append(src.Skipped, Skipped{Path: top, Reason: "hidden"})
				lastHidden = top
			}
		case !isDir:
			if IsImageName(top) {
				looseImages++
			}
			src.Skipped = append(src.Skipped, Skipped{Path: top, Reason: "not in a class folder"})
		default:
			if _, seen := classStart[top]; !seen {
				classStart[top] = i
				src.Classes = append(src.Classes, top)
			}
		}
	}
	switch len(src.Classes) {
	case 0:
		if looseImages > 0 {
			return nil, fmt.Errorf("dataset: %s has %d images but no class folders: put each class's images under its own prefix (%s/cat/001.jpg)", data, looseImages, where)
		}
		return nil, fmt.Errorf("dataset: %s has no class folders: want one prefix (folder) of images per class (%s/cat/001.jpg)", data, where)
	case 1:
		return nil, fmt.Errorf("dataset: %s has only one class folder (%q): training a classifier needs at least two", data, src.Classes[0])
	}
	for label, class := range src.Classes {
		n := len(src.Items)
		lastHidden := ""
		for _, o := range objs[classStart[class]:] {
			if !strings.HasPrefix(o.Key, class+"/") {
				break // walk order keeps a folder's objects together
			}
			segs := strings.Split(o.Key, "/")
			name := segs[len(segs)-1]
			if hidden := hiddenPrefix(segs); hidden != "" {
				if hidden != lastHidden {
					src.Skipped = append(src.Skipped, Skipped{Path: hidden, Reason: "hidden"})
					lastHidden = hidden
				}
				continue
			}
			switch {
			case slices.Contains(segs[:len(segs)-1], ""):
				src.Skipped = append(src.Skipped, Skipped{Path: o.Key, Reason: "empty folder name in the object key"})
			case name == "":
				// A folder marker ("cat/sub/", as consoles make them): the
				// folder exists, and nothing else.
			case o.NotRegular != "":
				src.Skipped = append(src.Skipped, Skipped{Path: o.Key, Reason: o.NotRegular})
			case !IsImageName(name):
				src.Skipped = append(src.Skipped, Skipped{Path: o.Key, Reason: "not an image (extension " + extOrNone(name) + ")"})
			default:
				src.Items = append(src.Items, Item{Path: o.Key, Label: label, Size: o.Size, ModTime: o.ModTime})
			}
		}
		if len(src.Items) == n {
			return nil, fmt.Errorf("dataset: class folder %s/%s has no images (JPEG, PNG, GIF, BMP, TIFF or WebP)", where, class)
		}
		added := src.Items[n:]
		sort.SliceStable(added, func(a, b int) bool { return added[a].Path < added[b].Path })
	}
	if s.Strict && len(src.Skipped) > 0 {
		return nil, strictError(data, src.Skipped)
	}
	return src, nil
}

// walkOrder sorts objects as a folder walk meets the files, segment by
// segment: the folder "b" and everything below it, then "b-c", then
// "b.png", where key order ('-' and '.' sort before '/') puts "b-c" and
// "b.png" before "b/x.png".
func walkOrder(objs []Object) {
	sort.Slice(objs, func(a, b int) bool { return walkLess(objs[a].Key, objs[b].Key) })
}

func walkLess(a, b string) bool {
	for {
		sa, ra, moreA := strings.Cut(a, "/")
		sb, rb, moreB := strings.Cut(b, "/")
		if sa != sb {
			return sa < sb
		}
		if !moreA || !moreB {
			return !moreA && moreB // a file before the folder of its name
		}
		a, b = ra, rb
	}
}

// hiddenPrefix is the path up to the first segment that starts with ".",
// or "" when none does.
func hiddenPrefix(segs []string) string {
	for i, s := range segs {
		if strings.HasPrefix(s, ".") {
			return strings.Join(segs[:i+1], "/")
		}
	}
	return ""
}

// checkStoreMarker refuses a bucket prefix whose MarkerFile says that
// tlearn began to write the dataset and did not finish (a folder that
// `tlearn data` was still writing when it was uploaded), as Open refuses
// such a folder.
func checkStoreMarker(ctx context.Context, data string, st Store, objs []Object) error {
	for _, o := range objs {
		if o.Key != MarkerFile {
			continue
		}
		r, err := st.NewRangeReader(ctx, MarkerFile, 0, 1<<20)
		if err != nil {
			return fmt.Errorf("dataset: %s: read %s: %w", data, MarkerFile, err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return fmt.Errorf("dataset: %s: read %s: %w", data, MarkerFile, err)
		}
		var m Marker
		if json.Unmarshal(b, &m) != nil || m.State == "" {
			return nil // the plain-text marker of old versions: complete
		}
		if m.State != StateComplete {
			return &IncompleteError{Dir: data, Made: m.Made, Command: m.Command}
		}
	}
	return nil
}

// readTimeout bounds one read of an object of size bytes: a minute, plus a
// second per MiB. A stalled connection then fails the run (it resumes)
// instead of hanging it.
func readTimeout(size int64) time.Duration {
	return time.Minute + time.Duration(size>>20)*time.Second
}

// readObject reads the object key of st (listed with size bytes) into buf,
// at most limit+1 bytes, and returns how many it read.
func readObject(ctx context.Context, st Store, key string, size, limit int64, buf *bytes.Buffer) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout(size))
	defer cancel()
	r, err := st.NewRangeReader(ctx, key, 0, -1)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	buf.Reset()
	buf.Grow(int(min(size, limit)) + bytes.MinRead)
	return buf.ReadFrom(io.LimitReader(r, limit+1))
}

// objectReaderAt reads an object by ranges. Each ReadAt fetches at least
// readAhead bytes and keeps the last block, so that reading a header
// through a small buffer, and then the last bytes of a small object, costs
// one request.
type objectReaderAt struct {
	ctx   context.Context
	st    Store
	key   string
	size  int64
	off   int64 // of block
	block []byte
}

const readAhead = 64 << 10

func (r *objectReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("dataset: negative offset")
	}
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= r.size {
			return n, io.EOF
		}
		if at < r.off || at >= r.off+int64(len(r.block)) {
			if err := r.fetch(at, int64(len(p)-n)); err != nil {
				return n, err
			}
		}
		n += copy(p[n:], r.block[at-r.off:])
	}
	return n, nil
}

func (r *objectReaderAt) fetch(at, want int64) error {
	length := min(max(want, readAhead), r.size-at)
	ctx, cancel := context.WithTimeout(r.ctx, readTimeout(length))
	defer cancel()
	rc, err := r.st.NewRangeReader(ctx, r.key, at, length)
	if err != nil {
		return err
	}
	defer rc.Close()
	if cap(r.block) < int(length) {
		r.block = make([]byte, length)
	}
	r.block = r.block[:length]
	got, err := io.ReadFull(rc, r.block)
	r.block, r.off = r.block[:got], at
	if err == io.ErrUnexpectedEOF || (err == io.EOF && got == 0) {
		return fmt.Errorf("%s: the object is shorter than its listed %d bytes (changed since it was listed?)", r.key, r.size)
	}
	return err
}

func (r *objectReaderAt) Close() error { return nil }
