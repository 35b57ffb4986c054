package dataset

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// DefaultMaxPixels is the largest width×height decoded when Settings.MaxPixels
// is 0: 64 Mpx (2^26), above any camera photo and far below what a
// decompression bomb asks for.
const DefaultMaxPixels = 1 << 26

// Settings controls how a Source is listed and decoded. The zero value means
// the defaults.
type Settings struct {
	// Strict rejects hidden files, non-image files and files outside class
	// folders instead of listing them in Source.Skipped.
	Strict bool
	// MaxPixels is the largest width×height that is decoded; larger images
	// fail with a *DecodeError wrapping ErrTooLarge. 0 means DefaultMaxPixels.
	MaxPixels int
}

// Item is one image of a Source. Size and ModTime come from the listing, so a
// cache can tell later whether the file changed.
type Item struct {
	// Path is relative to Source.Dir, slash-separated, starting with the
	// class folder ("cat/0001.jpg"); for OpenFiles sources Dir is empty and
	// Path is the file's path.
	Path string `json:"path"`
	// Label indexes Source.Classes; -1 for unlabelled sources (OpenFiles).
	Label   int       `json:"label"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
}

// Skipped is a file that a Source found but does not use, with the reason.
type Skipped struct {
	Path   string `json:"path"` // like Item.Path
	Reason string `json:"reason"`
}

// Source is a listed set of labelled images. Items are ordered by class, then
// by path; the order (and so every index into Items) is the same on every
// machine for the same files. A Source is read-only after Open and may be
// shared by several Loaders.
type Source struct {
	// Dir is the folder, or the URL of the bucket prefix (OpenData), that
	// Item paths are relative to.
	Dir     string
	Classes []string
	Items   []Item
	Skipped []Skipped

	maxPixels int
	store     Store // nil for a folder
}

// imageExts are the extensions listed as images; the decoders registered by
// this package read all of them.
var imageExts = map[string]bool{
	".jpg": true, ".jpeg": true, ".png": true, ".gif": true, ".bmp": true,
	".tif": true, ".tiff": true, ".webp": true,
}

// IsImageName reports whether name has one of the image extensions a Source
// lists (JPEG, PNG, GIF, BMP, TIFF, WebP; case-insensitive).
func IsImageName(name string) bool {
	return imageExts[strings.ToLower(filepath.Ext(name))]
}

// Open lists a folder with one sub-folder per class. Class indices follow the
// sorted folder names (the order of Keras' flow_from_directory, so label ids
// match what Keras users know); images are searched recursively inside each
// class folder and sorted by relative path. Hidden entries (names starting
// with "."), non-image files and files directly in dir are listed in
// Skipped, or rejected with Settings.Strict.
//
// Open fails with a message naming the folder when dir does not exist, is a
// file, has fewer than two class folders, or has a class folder without
// images, and with an *IncompleteError when dir is (part of) a dataset that
// tlearn began to write and did not finish (CheckComplete). Images are not
// decoded here: a corrupt file fails later, with a *DecodeError.
func Open(dir string, s Settings) (*Source, error) {
	// Before checkDir: a part that an interrupted conversion had not yet
	// made is better reported as incomplete than as missing.
	if err := CheckComplete(dir); err != nil {
		return nil, err
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	src := &Source{Dir: dir, maxPixels: s.maxPixels()}
	var looseImages int
	for _, e := range entries { // os.ReadDir sorts by name: byte order, as Python's sorted()
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			src.Skipped = append(src.Skipped, Skipped{Path: name, Reason: "hidden"})
			continue
		}
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 {
			// Keras follows symlinked class folders (os.path.isdir).
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.IsDir() {
				isDir = true
			}
		}
		if !isDir {
			if IsImageName(name) {
				looseImages++
			}
			src.Skipped = append(src.Skipped, Skipped{Path: name, Reason: "not in a class folder"})
			continue
		}
		src.Classes = append(src.Classes, name)
	}
	switch len(src.Classes) {
	case 0:
		if looseImages > 0 {
			return nil, fmt.Errorf("dataset: %s has %d images but no class folders: put each class's images in its own sub-folder (%s/cat/001.jpg)", dir, looseImages, dir)
		}
		return nil, fmt.Errorf("dataset: %s has no class folders: want one sub-folder of images per class (%s/cat/001.jpg)", dir, dir)
	case 1:
		return nil, fmt.Errorf("dataset: %s has only one class folder (%q): training a classifier needs at least two", dir, src.Classes[0])
	}
	for label, class := range src.Classes {
		n := len(src.Items)
		var err error
		src.Items, src.Skipped, err = listImages(dir, class, label, false, src.Items, src.Skipped)
		if err != nil {
			return nil, err
		}
		if len(src.Items) == n {
			return nil, fmt.Errorf("dataset: class folder %s has no images (JPEG, PNG, GIF, BMP, TIFF or WebP)", filepath.Join(dir, class))
		}
	}
	if s.Strict && len(src.Skipped) > 0 {
		return nil, strictError(dir, src.Skipped)
	}
	return src, nil
}

// OpenFiles lists unlabelled images for classification: each path is an
// image file (used whatever its extension) or a folder searched recursively
// for images. Items keep the order of paths, each folder's images sorted;
// every Label is -1 and Classes is nil. A folder in an incomplete dataset
// is refused with an *IncompleteError (CheckComplete).
func OpenFiles(paths []string, s Settings) (*Source, error) {
	src := &Source{maxPixels: s.maxPixels()}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("dataset: %s does not exist", p)
			}
			return nil, fmt.Errorf("dataset: %w", err)
		}
		if !fi.IsDir() {
			if !fi.Mode().IsRegular() {
				// Reading a FIFO blocks until a writer comes; refuse it
				// (and devices, sockets) here, before any work starts.
				return nil, fmt.Errorf("dataset: %w", &fsutil.NotRegularError{Path: p, Mode: fi.Mode()})
			}
			src.Items = append(src.Items, Item{Path: filepath.ToSlash(filepath.Clean(p)), Label: -1, Size: fi.Size(), ModTime: fi.ModTime()})
			continue
		}
		if err := CheckComplete(p); err != nil {
			return nil, err
		}
		n := len(src.Items)
		src.Items, src.Skipped, err = listImages(p, "", -1, true, src.Items, src.Skipped)
		if err != nil {
			return nil, err
		}
		if len(src.Items) == n {
			return nil, fmt.Errorf("dataset: %s has no images (JPEG, PNG, GIF, BMP, TIFF or WebP)", p)
		}
	}
	if len(src.Items) == 0 {
		return nil, errors.New("dataset: no images given")
	}
	if s.Strict && len(src.Skipped) > 0 {
		return nil, strictError(strings.Join(paths, ", "), src.Skipped)
	}
	return src, nil
}

// Path returns the file path of item i; for a Source in object storage,
// the URL of the object without the query of Dir (s3://bucket/prefix/cat/1.jpg).
func (s *Source) Path(i int) string {
	return s.PathOf(s.Items[i].Path)
}

// PathOf is the file path (or, in object storage, the URL) of the
// slash-separated path rel of an Item or a Skipped entry.
func (s *Source) PathOf(rel string) string {
	if s.store != nil {
		return objectPath(s.Dir, rel)
	}
	return filepath.Join(s.Dir, filepath.FromSlash(rel))
}

// ClassCounts returns the number of items per class.
func (s *Source) ClassCounts() []int {
	n := make([]int, len(s.Classes))
	for _, it := range s.Items {
		if it.Label >= 0 && it.Label < len(n) {
			n[it.Label]++
		}
	}
	return n
}

// Decode decodes item i into an RGB image (*image.Gray or opaque
// *image.RGBA) at its own size, with the Source's pixel limit; see
// DecodeFile. An image that cannot be used is a *DecodeError; a bucket that
// cannot be read (the network, the credentials) is another error.
func (s *Source) Decode(i int) (image.Image, error) {
	d := decoder{maxPixels: s.maxPixels}
	return d.decodeItem(context.Background(), s, i)
}

// ItemReader reads an item's bytes at any offset.
type ItemReader interface {
	io.ReaderAt
	io.Closer
}

// OpenItem opens item i for reading at any offset: the file (refusing a
// FIFO or device, as fsutil.Open does), or, in object storage, reads by
// ranges of at least 64 KiB, the last one kept, so that a header read
// through a small buffer and the last bytes of a small image cost one
// request.
func (s *Source) OpenItem(ctx context.Context, i int) (ItemReader, error) {
	if s.store == nil {
		return fsutil.Open(s.Path(i))
	}
	return &objectReaderAt{ctx: ctx, st: s.store, key: s.Items[i].Path, size: s.Items[i].Size}, nil
}

func (s Settings) maxPixels() int {
	if s.MaxPixels <= 0 {
		return DefaultMaxPixels
	}
	return s.MaxPixels
}

func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("dataset: folder %s does not exist", dir)
		}
		return fmt.Errorf("dataset: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("dataset: %s is a file, not a folder of class folders", dir)
	}
	return nil
}

// listImages appends the images under root/sub (recursively, sorted by
// path) to items, and the files it passes over to skipped. Paths are
// relative to root, or the paths themselves with asGiven (OpenFiles, whose
// Source has no Dir).
func listImages(root, sub string, label int, asGiven bool, items []Item, skipped []Skipped) ([]Item, []Skipped, error) {
	start := len(items)
	top := filepath.Join(root, sub)
	walkRoot := top
	if fi, err := os.Lstat(top); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		// WalkDir does not descend into a root that is a symbolic link; the
		// trailing separator makes it resolve the link, and the paths below
		// it come out as top/... all the same.
		walkRoot = top + string(filepath.Separator)
	}
	err := filepath.WalkDir(walkRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("dataset: list %s: %w", p, err)
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if asGiven {
			rel = filepath.ToSlash(p)
		}
		if p == walkRoot {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			skipped = append(skipped, Skipped{Path: rel, Reason: "hidden"})
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		var fi fs.FileInfo
		if d.Type()&fs.ModeSymlink != 0 {
			fi, err = os.Stat(p)
			if err != nil {
				skipped = append(skipped, Skipped{Path: rel, Reason: "broken symbolic link"})
				return nil
			}
			if fi.IsDir() {
				// Not followed: a link back up the tree would loop.
				skipped = append(skipped, Skipped{Path: rel, Reason: "symbolic link to a folder (not followed)"})
				return nil
			}
		} else if fi, err = d.Info(); err != nil {
			return fmt.Errorf("dataset: list %s: %w", p, err)
		}
		switch {
		case !fi.Mode().IsRegular():
			skipped = append(skipped, Skipped{Path: rel, Reason: fsutil.Kind(fi.Mode()) + ", not a regular file"})
		case !IsImageName(d.Name()):
			skipped = append(skipped, Skipped{Path: rel, Reason: "not an image (extension " + extOrNone(d.Name()) + ")"})
		default:
			items = append(items, Item{Path: rel, Label: label, Size: fi.Size(), ModTime: fi.ModTime()})
		}
		return nil
	})
	if err != nil {
		return items, skipped, err
	}
	// WalkDir descends into a sub-folder where its name sorts among the
	// files ("b/x.png" before "b.png"); the order promised is by whole path.
	added := items[start:]
	sort.SliceStable(added, func(a, b int) bool { return added[a].Path < added[b].Path })
	return items, skipped, nil
}

func extOrNone(name string) string {
	if e := path.Ext(name); e != "" {
		return e
	}
	return "none"
}

func strictError(where string, skipped []Skipped) error {
	first := skipped[0]
	more := ""
	if len(skipped) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(skipped)-1)
	}
	return fmt.Errorf("dataset: %s: %s is not a usable image: %s%s; strict mode accepts only images inside class folders", where, first.Path, first.Reason, more)
}
