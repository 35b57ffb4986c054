package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrLocked is wrapped by every *LockedError.
var ErrLocked = errors.New("being written by another process")

// LockedError says that another process holds the lock of Path: PID, Host
// and Command are what that process wrote into the lock file (0 and "" when
// it had not written them yet; Host is "" in the lock files of a tlearn
// older than sharded caching). On a shared file system the holder may run
// on another machine: its pid means something there only.
type LockedError struct {
	Path    string
	PID     int
	Host    string
	Command string
}

func (e *LockedError) Error() string {
	holder := "a process that has not yet said which"
	if e.PID > 0 {
		holder = "pid " + strconv.Itoa(e.PID)
		if e.Command != "" {
			holder += ": " + e.Command
		}
		if e.Host != "" {
			holder += "; on host " + e.Host
		}
	}
	return fmt.Sprintf("fsutil: %s is %v (%s)", e.Path, ErrLocked, holder)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// Lock is the one writer's hold on an output (a cache, run folder, dataset
// or file). The lock file is a hidden sibling, ".NAME.lock", not a file
// inside the output, so that the output can still be replaced by renaming
// a finished folder over it. The lock is an advisory flock: the kernel
// drops it when the holder dies, however it dies, so a lock is never stale;
// the file itself is removed by Unlock.
type Lock struct {
	out, path string
	f         *os.File
}

// LockPath is the lock file of the output out.
func LockPath(out string) string {
	out = filepath.Clean(out)
	return filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".lock")
}

// LockOutput takes the lock of the output out without waiting: when another
// process holds it, the error is a *LockedError naming that process. Out's
// parent folder must exist (the caller makes it, where the command makes
// missing parents). The holder's pid, command line and host name are
// written into the lock file for the next writer's error.
func LockOutput(out string) (*Lock, error) {
	out = filepath.Clean(out)
	path := LockPath(out)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			// As Create: the lock file's name means nothing to the user.
			dir := filepath.Dir(out)
			if st, serr := os.Stat(dir); serr != nil {
				return nil, fmt.Errorf("fsutil: lock %s: folder %s: %w", out, dir, serr)
			} else if !st.IsDir() {
				return nil, fmt.Errorf("fsutil: lock %s: %s is not a folder", out, dir)
			}
			return nil, fmt.Errorf("fsutil: lock %s: %w", out, bareError(err))
		}
		locked, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fsutil: lock %s: %w", out, Renamed(err, path, out))
		}
		if !locked {
			pid, cmd, host := readHolder(f)
			f.Close()
			return nil, &LockedError{Path: out, PID: pid, Host: host, Command: cmd}
		}
		// The previous holder may have removed the file between our open
		// and our lock: then we locked a file nobody else will see, and
		// must try again on the one now at path.
		if same, err := samePath(f, path); err != nil || !same {
			f.Close()
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("fsutil: lock %s: %w", out, Renamed(err, path, out))
			}
			continue
		}
		host, _ := os.Hostname()
		holder := strconv.Itoa(os.Getpid()) + "\n" + oneLine(strings.Join(os.Args, " ")) + "\n" + oneLine(host) + "\n"
		if err := f.Truncate(0); err == nil {
			f.WriteAt([]byte(holder), 0)
		}
		return &Lock{out: out, path: path, f: f}, nil
	}
}

func samePath(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// oneLine keeps a holder field on its line of the lock file.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// readHolder reads the pid, command line and host name that the holder of f
// wrote: three lines, of which a tlearn older than sharded caching wrote
// the first two (and its command line may then span several).
func readHolder(f *os.File) (pid int, cmd, host string) {
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	pidLine, rest, _ := strings.Cut(string(b[:n]), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(pidLine))
	if err != nil {
		return 0, "", ""
	}
	lines := strings.Split(strings.TrimSuffix(rest, "\n"), "\n")
	if len(lines) == 2 {
		return pid, strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1])
	}
	return pid, strings.TrimSpace(rest), ""
}

// Unlock removes the lock file and releases the lock. It is nil-safe and
// repeatable.
func (l *Lock) Unlock() {
	if l == nil || l.f == nil {
		return
	}
	// Removed while still locked, so that a writer that opened it meanwhile
	// sees that it is gone (LockOutput checks) rather than sharing it.
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
}

// RemoveStale removes what an earlier writer of the same output, killed
// before it could clean up, left next to it: the hidden ".NAME.partial-*"
// folders of head/run and the ".NAME.tmp-*" files of Create, for the output
// and for the paths also, which must be files or folders that only the
// output's writer writes (a sweep's runs inside it, a fine-tune's
// checkpoint beside it). Holding the lock is what makes this safe: a live
// writer of the output would hold it, so these cannot be anyone's files in
// progress. Other outputs' temporaries are never touched. It returns the
// paths removed.
func (l *Lock) RemoveStale(also ...string) ([]string, error) {
	if l == nil || l.f == nil {
		return nil, errors.New("fsutil: remove stale files: the output is not locked")
	}
	var removed []string
	var errs []error
	for _, out := range append([]string{l.out}, also...) {
		r, err := removeStale(filepath.Clean(out))
		removed = append(removed, r...)
		errs = append(errs, err)
	}
	return removed, errors.Join(errs...)
}

func removeStale(out string) ([]string, error) {
	dir, base := filepath.Dir(out), filepath.Base(out)
	var removed []string
	var errs []error
	for _, pattern := range []string{".partial-*", ".tmp-*"} {
		// Glob's metacharacters in base would widen the match to other
		// outputs' files: match the prefix literally instead.
		m, err := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+pattern))
		if err != nil {
			return nil, fmt.Errorf("fsutil: remove stale files of %s: %w", out, err)
		}
		for _, p := range m {
			if err := os.RemoveAll(p); err != nil {
				errs = append(errs, fmt.Errorf("fsutil: remove stale %s: %w", p, err))
				continue
			}
			removed = append(removed, p)
		}
	}
	return removed, errors.Join(errs...)
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Writer reports the live writer of the first of outs whose lock another
// open file holds, as the *LockedError that a second writer would get, or
// nil when none is being written. Readers call it after failing to read an
// output, so that a folder caught in the middle of a rewrite (an extract
// --force replacing a cache) is reported as being written rather than as
// damaged or unfinished. It takes no lock that a writer would wait on:
// only a shared flock, held for the moment of the test.
func Writer(outs ...string) *LockedError {
	for _, out := range outs {
		out = filepath.Clean(out)
		f, err := os.Open(LockPath(out))
		if err != nil {
			continue
		}
		if heldElsewhere(f) {
			pid, cmd, host := readHolder(f)
			f.Close()
			return &LockedError{Path: out, PID: pid, Host: host, Command: cmd}
		}
		f.Close()
	}
	return nil
}
