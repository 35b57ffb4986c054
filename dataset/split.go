package dataset

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/tlearn/tlearn/internal/fsutil"
	"github.com/tlearn/tlearn/internal/progress"
)

// Split divides src's items into training and validation indices,
// stratified: each class gives round(val × its size) images to validation,
// at least one, and keeps at least one for training, or Split fails naming
// every class that is too small. The choice within a class is a seeded
// shuffle (PCG) that depends only on the seed, the class name and the
// class's item paths, so it is reproducible and other classes do not change
// it. Both lists are in ascending index order. val must be in (0, 1).
func Split(src *Source, val float64, seed uint64) (train, valIdx []int, err error) {
	if !(val > 0 && val < 1) {
		return nil, nil, fmt.Errorf("dataset: split: validation fraction %v, want between 0 and 1", val)
	}
	if len(src.Classes) == 0 {
		return nil, nil, errors.New("dataset: split: the source has no classes")
	}
	byClass := make([][]int, len(src.Classes))
	for i, it := range src.Items {
		if it.Label < 0 || it.Label >= len(byClass) {
			return nil, nil, fmt.Errorf("dataset: split: item %s has label %d, want 0..%d", it.Path, it.Label, len(byClass)-1)
		}
		byClass[it.Label] = append(byClass[it.Label], i)
	}
	var small []string
	for c, items := range byClass {
		if len(items) < 2 {
			small = append(small, fmt.Sprintf("%q (%d)", src.Classes[c], len(items)))
		}
	}
	if len(small) > 0 {
		return nil, nil, fmt.Errorf("dataset: split: every class needs at least 2 images (one for training, one for validation); too small: %s", strings.Join(small, ", "))
	}
	for c, items := range byClass {
		n := len(items)
		nv := min(max(int(math.Round(val*float64(n))), 1), n-1)
		h := fnv.New64a()
		h.Write([]byte(src.Classes[c]))
		rng := rand.New(rand.NewPCG(seed, h.Sum64()))
		perm := append([]int(nil), items...)
		rng.Shuffle(n, func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
		valIdx = append(valIdx, perm[:nv]...)
		train = append(train, perm[nv:]...)
	}
	sort.Ints(train)
	sort.Ints(valIdx)
	return train, valIdx, nil
}

// CopyItems puts the items idx of src under dir, at their relative paths
// (dir/<class>/<path in class>): hard links when the file system allows,
// otherwise atomic copies. Existing files are not replaced. It returns how
// many were linked and copied. Each file done is one Add on p (nil:
// silent); the caller starts and finishes the phase, so that several
// calls (a split's train and val parts) can share one.
func CopyItems(ctx context.Context, src *Source, idx []int, dir string, p progress.Reporter) (linked, copied int, err error) {
	p = progress.OrNop(p)
	if src.Dir == "" {
		return 0, 0, errors.New("dataset: copy: the source has no folder (OpenFiles); item paths are not relative")
	}
	dirs := map[string]bool{}
	canLink := true
	for n, i := range idx {
		if n%64 == 0 {
			if err := ctx.Err(); err != nil {
				return linked, copied, err
			}
		}
		from := src.Path(i)
		to := filepath.Join(dir, filepath.FromSlash(src.Items[i].Path))
		parent := filepath.Dir(to)
		if !dirs[parent] {
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return linked, copied, fmt.Errorf("dataset: copy: %w", err)
			}
			dirs[parent] = true
		}
		if canLink {
			err := os.Link(from, to)
			if err == nil {
				linked++
				p.Add(1)
				continue
			}
			if errors.Is(err, fs.ErrExist) || !linkUnsupported(err) {
				return linked, copied, fmt.Errorf("dataset: copy: %w", err)
			}
			canLink = false // the file system (or the folders' devices) forbid it; copy from now on
		}
		if err := copyFile(from, to); err != nil {
			return linked, copied, err
		}
		copied++
		p.Add(1)
	}
	for d := range dirs { // links are directory entries: make them durable too
		if err := fsutil.SyncDir(d); err != nil {
			return linked, copied, err
		}
	}
	return linked, copied, nil
}

// linkUnsupported reports the errors after which copying is the answer:
// another device, a file system without hard links, a link-count limit or
// permission rules (protected_hardlinks).
func linkUnsupported(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EXDEV, syscall.EPERM, syscall.EMLINK, syscall.ENOTSUP, syscall.EACCES:
		return true
	}
	return false
}

func copyFile(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("dataset: copy: %s already exists", to)
	}
	in, err := fsutil.Open(from)
	if err != nil {
		return fmt.Errorf("dataset: copy: %w", err)
	}
	defer in.Close()
	return fsutil.WriteWith(to, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
