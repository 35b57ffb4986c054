package fsutil

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is a file being written atomically. Write to it, then Commit; Abort
// (or a deferred Abort after Commit, which is a no-op) removes the temporary.
type File struct {
	*os.File
	final string
	done  bool
}

// Create starts an atomic write of path. The folder must exist.
func Create(path string, perm os.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		// The temporary's random name means nothing to the user: say what
		// is wrong with the folder instead, where that is the problem.
		if st, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("fsutil: create %s: folder %s: %w", path, dir, serr)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("fsutil: create %s: %s is not a folder", path, dir)
		}
		return nil, fmt.Errorf("fsutil: create %s: %w", path, bareError(err))
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("fsutil: create %s: %w", path, bareError(err))
	}
	return &File{File: f, final: path}, nil
}

// Commit syncs, closes and renames the file into place, then syncs the folder.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("fsutil: %s: already committed or aborted", f.final)
	}
	f.done = true
	tmp := f.Name()
	if err := f.Sync(); err != nil {
		f.File.Close()
		os.Remove(tmp)
		return fmt.Errorf("fsutil: write %s: %w", f.final, bareError(err))
	}
	if err := f.File.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("fsutil: write %s: %w", f.final, bareError(err))
	}
	if err := os.Rename(tmp, f.final); err != nil {
		os.Remove(tmp)
		if fi, serr := os.Stat(f.final); serr == nil && fi.IsDir() {
			return fmt.Errorf("fsutil: write %s: it is a folder", f.final)
		}
		return fmt.Errorf("fsutil: write %s: %w", f.final, bareError(err))
	}
	return SyncDir(filepath.Dir(f.final))
}

// bare makes an error from writing the temporary name the final one.
func (f *File) bare(err error) error { return Renamed(err, f.Name(), f.final) }

// Abort discards the temporary file. It is safe after Commit and repeatable.
func (f *File) Abort() {
	if f == nil || f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.Name())
}

// WriteFile writes data to path atomically.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return WriteWith(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteWith writes path atomically with the bytes that fn writes; when fn
// fails, path keeps its earlier content.
func WriteWith(path string, perm os.FileMode, fn func(w io.Writer) error) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := fn(f); err != nil {
		return fmt.Errorf("fsutil: write %s: %w", path, f.bare(err))
	}
	return f.Commit()
}

// SyncDir fsyncs a folder so that a rename in it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsutil: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsutil: sync %s: %w", dir, err)
	}
	return nil
}

// FormatBytes writes n for people in decimal units (kB = 10³ bytes, MB =
// 10⁶, GB = 10⁹), the units most of tlearn's output already used: download
// sizes (as the ONNX Model Zoo and web servers give them), model and
// classifier sizes. Cache sizes, once printed in KiB/MiB/GiB, use them
// too, so that two sizes on one screen compare directly.
func FormatBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
