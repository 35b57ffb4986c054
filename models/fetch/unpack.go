package fetch

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tlearn/tlearn/internal/fsutil"
)

// unpackLimits bound what unpack writes, since an archive from the network
// may be crafted to fill the disk. Zero values mean the defaults.
type unpackLimits struct {
	MaxFiles int   // entries of any type; default 10,000
	MaxBytes int64 // total bytes of regular files; default 8 GiB
}

const (
	defaultMaxFiles = 10000
	defaultMaxBytes = 8 << 30
)

// unpackResult lists what unpack did.
type unpackResult struct {
	Files   []string // regular files written, slash-separated paths relative to the folder, sorted
	Skipped []string // links and special files, not created
}

// unpack extracts a tar.gz stream into dir, which must exist (and should be
// empty). Only folders and regular files are created, with modes 0755 and
// 0644; symbolic and hard links, devices and FIFOs are skipped and listed.
// An entry whose name is absolute or climbs out with "..", or an archive
// over the limits, fails with ErrUnsafeArchive. Writes go through an
// os.Root, so no entry can land outside dir even through a link that was
// already there.
func unpack(ctx context.Context, r io.Reader, dir string, limits unpackLimits) (*unpackResult, error) {
	if limits.MaxFiles <= 0 {
		limits.MaxFiles = defaultMaxFiles
	}
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = defaultMaxBytes
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("fetch: unpack: %w", err)
	}
	defer root.Close()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("fetch: unpack: not a gzip stream: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(ctxReader{ctx, zr})
	res := &unpackResult{}
	budget := limits.MaxBytes
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("fetch: unpack: corrupt archive: %w", err)
		}
		if entries >= limits.MaxFiles {
			return nil, fmt.Errorf("%w: more than %d entries", ErrUnsafeArchive, limits.MaxFiles)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeDir:
		case tar.TypeXGlobalHeader:
			continue
		default:
			res.Skipped = append(res.Skipped, hdr.Name)
			continue
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if name == "." {
			continue
		}
		if hdr.Typeflag == tar.TypeDir {
			if err := root.MkdirAll(name, 0o755); err != nil {
				return nil, fmt.Errorf("fetch: unpack %s: %w", hdr.Name, err)
			}
			continue
		}
		if hdr.Size > budget {
			return nil, fmt.Errorf("%w: %s would take the unpacked size over %d bytes", ErrUnsafeArchive, hdr.Name, limits.MaxBytes)
		}
		budget -= hdr.Size
		if err := writeEntry(root, name, tr); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("fetch: unpack %s: %w", hdr.Name, err)
		}
		res.Files = append(res.Files, name)
	}
	sort.Strings(res.Files)
	return res, nil
}

// entryName checks an archive member's name and returns it cleaned ("."
// for the archive's own top folder).
func entryName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: entry %q %s", ErrUnsafeArchive, name, why)
	}
	switch {
	case name == "":
		return bad("has no name")
	case strings.ContainsRune(name, 0):
		return bad("contains a NUL byte")
	case strings.Contains(name, `\`):
		return bad("contains a backslash")
	case path.IsAbs(name):
		return bad("is an absolute path")
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return bad(`climbs out with ".."`)
		}
	}
	clean := path.Clean(name)
	if clean != "." && !filepath.IsLocal(filepath.FromSlash(clean)) {
		return bad("is not a local path")
	}
	return clean, nil
}

func writeEntry(root *os.Root, name string, r io.Reader) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// unpackedMarker is written last into a folder that Get unpacked: its
// presence says the folder is complete and which archive it came from.
const unpackedMarker = ".tlearn-unpacked.json"

type unpackedInfo struct {
	ArchiveSHA256 string `json:"archive_sha256"`
	Model         string `json:"model"` // slash path relative to the folder
}

// readUnpacked reports the model of a complete unpacked folder made from
// the archive with the given sha256.
func readUnpacked(dir, sha string) (model string, ok bool, err error) {
	b, err := fsutil.ReadFile(filepath.Join(dir, unpackedMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("fetch: %w", err)
	}
	var info unpackedInfo
	if json.Unmarshal(b, &info) != nil || info.ArchiveSHA256 != sha || !filepath.IsLocal(filepath.FromSlash(info.Model)) {
		return "", false, nil
	}
	model = filepath.Join(dir, filepath.FromSlash(info.Model))
	if _, err := os.Stat(model); err != nil {
		return "", false, nil
	}
	return model, true, nil
}

// unpackModel unpacks archive into a fresh temporary folder next to dest,
// finds the .onnx model, and renames the folder to dest, so that dest is
// either absent or complete.
func unpackModel(ctx context.Context, archive, dest, sha string) (string, error) {
	parent := filepath.Dir(dest)
	// Named as fsutil's RemoveStale finds a killed run's partial folder.
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dest)+".partial-")
	if err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	f, err := fsutil.Open(archive)
	if err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	res, err := unpack(ctx, f, tmp, unpackLimits{})
	f.Close()
	if err != nil {
		return "", fmt.Errorf("fetch: %s: %w", archive, err)
	}
	var onnx []string
	for _, name := range res.Files {
		if strings.EqualFold(path.Ext(name), ".onnx") {
			onnx = append(onnx, name)
		}
	}
	switch len(onnx) {
	case 0:
		return "", fmt.Errorf("fetch: %s holds no .onnx file (%d files)", archive, len(res.Files))
	case 1:
	default:
		return "", fmt.Errorf("%w: %s holds %s", ErrSeveralModels, archive, strings.Join(onnx, ", "))
	}
	b, err := json.MarshalIndent(unpackedInfo{ArchiveSHA256: sha, Model: onnx[0]}, "", "  ")
	if err != nil {
		return "", err
	}
	if err := fsutil.WriteFile(filepath.Join(tmp, unpackedMarker), append(b, '\n'), 0o644); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("fetch: %w", err)
	}
	if err := replaceDir(tmp, dest); err != nil {
		return "", err
	}
	committed = true
	return filepath.Join(dest, filepath.FromSlash(onnx[0])), nil
}

// replaceDir renames tmp to dest. An existing dest is replaced only when
// tlearn made it (it holds the marker); anything else there is the user's.
func replaceDir(tmp, dest string) error {
	if _, err := os.Lstat(dest); err == nil {
		if _, err := os.Stat(filepath.Join(dest, unpackedMarker)); err != nil {
			return fmt.Errorf("%w: %s", ErrFolderExists, dest)
		}
		old := tmp + ".old"
		if err := os.Rename(dest, old); err != nil {
			return fmt.Errorf("fetch: %w", err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	return fsutil.SyncDir(filepath.Dir(dest))
}

// testDataSets lists the test_data_set_* folders of an unpacked archive,
// sorted by name.
func testDataSets(dir string) ([]string, error) {
	var sets []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), "test_data_set_") {
			sets = append(sets, p)
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	sort.Strings(sets)
	return sets, nil
}
