package ortlib

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Resolver finds shared libraries by soname the way the dynamic loader does
// (ld.so(8)): a name with a slash is a path; otherwise the needing object's
// DT_RPATH (only when it has no DT_RUNPATH), LD_LIBRARY_PATH, its
// DT_RUNPATH, the ld.so cache, then the default folders. $ORIGIN in a path
// is the needing object's folder. A candidate of another ELF class or
// machine is skipped, as the loader skips it. It is how doctor and the CUDA
// fallback name the libraries that ldd would print as "not found", without
// loading anything.
type Resolver struct {
	LDLibraryPath []string          // LD_LIBRARY_PATH's folders
	Cache         map[string]string // the ld.so cache: soname → path
	DefaultDirs   []string          // the loader's built-in folders
}

// NewResolver reads this process's LD_LIBRARY_PATH and the system's ld.so
// cache (`ldconfig -p`, once per process: every session that falls back to
// CPU asks; empty where ldconfig is absent).
func NewResolver() *Resolver {
	r := &Resolver{
		Cache:       systemLDCache(),
		DefaultDirs: []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"},
	}
	if ld := os.Getenv("LD_LIBRARY_PATH"); ld != "" {
		for _, d := range filepath.SplitList(ld) {
			if d != "" {
				r.LDLibraryPath = append(r.LDLibraryPath, d)
			}
		}
	}
	return r
}

var systemLDCache = sync.OnceValue(ldCache)

// ldCache lists the ld.so cache through `ldconfig -p`, whose lines read
// "\tlibfoo.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libfoo.so.1".
// Entries of another ABI are left to the class check in Resolve.
func ldCache() map[string]string {
	m := map[string]string{}
	bin := "/sbin/ldconfig"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("ldconfig"); err != nil {
			return m
		}
	}
	out, err := exec.Command(bin, "-p").Output()
	if err != nil {
		return m
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimSpace(sc.Text()), " (")
		if !ok {
			continue
		}
		if _, path, ok := strings.Cut(rest, "=> "); ok {
			if _, seen := m[name]; !seen {
				m[name] = strings.TrimSpace(path)
			}
		}
	}
	return m
}

// Dependency is one DT_NEEDED entry of a library, resolved or not.
type Dependency struct {
	Name     string // the soname, as in DT_NEEDED
	Path     string // where the loader would find it; "" when missing
	NeededBy string // the file whose DT_NEEDED names it
}

// Missing reports whether the loader would fail to find the dependency.
func (d Dependency) Missing() bool { return d.Path == "" }

// Dependencies lists path's shared-library dependencies and theirs, each
// once, in the order ldd prints them (breadth first); a missing one is
// listed with an empty Path and its own dependencies are unknown.
func (r *Resolver) Dependencies(path string) ([]Dependency, error) {
	root, err := readELF(path)
	if err != nil {
		return nil, err
	}
	var deps []Dependency
	seen := map[string]bool{}
	queue := []*elfInfo{root}
	for len(queue) > 0 {
		obj := queue[0]
		queue = queue[1:]
		for _, name := range obj.needed {
			if seen[name] {
				continue
			}
			seen[name] = true
			p := r.resolve(name, obj)
			deps = append(deps, Dependency{Name: name, Path: p, NeededBy: obj.path})
			if p == "" {
				continue
			}
			if info, err := readELF(p); err == nil {
				queue = append(queue, info)
			}
		}
	}
	return deps, nil
}

// Resolve says where the loader would find soname for the object at
// needingPath (whose RUNPATH and class count), or "" when it would not.
func (r *Resolver) Resolve(soname, needingPath string) (string, error) {
	obj, err := readELF(needingPath)
	if err != nil {
		return "", err
	}
	return r.resolve(soname, obj), nil
}

func (r *Resolver) resolve(name string, obj *elfInfo) string {
	if strings.Contains(name, "/") {
		if obj.accepts(name) {
			return name
		}
		return ""
	}
	var dirs []string
	if len(obj.runpath) == 0 {
		dirs = append(dirs, obj.expand(obj.rpath)...)
	}
	dirs = append(dirs, r.LDLibraryPath...)
	dirs = append(dirs, obj.expand(obj.runpath)...)
	for _, d := range dirs {
		if p := filepath.Join(d, name); obj.accepts(p) {
			return p
		}
	}
	if p, ok := r.Cache[name]; ok && obj.accepts(p) {
		return p
	}
	for _, d := range r.DefaultDirs {
		if p := filepath.Join(d, name); obj.accepts(p) {
			return p
		}
	}
	return ""
}

// elfInfo is what resolution needs of one ELF file.
type elfInfo struct {
	path           string
	class          elf.Class
	machine        elf.Machine
	needed         []string
	rpath, runpath []string
}

func readELF(path string) (*elfInfo, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ortlib: read %s: %w", path, err)
	}
	defer f.Close()
	info := &elfInfo{path: path, class: f.Class, machine: f.Machine}
	if info.needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return nil, fmt.Errorf("ortlib: read %s: DT_NEEDED: %w", path, err)
	}
	for _, x := range []struct {
		tag elf.DynTag
		dst *[]string
	}{{elf.DT_RPATH, &info.rpath}, {elf.DT_RUNPATH, &info.runpath}} {
		vals, err := f.DynString(x.tag)
		if err != nil {
			return nil, fmt.Errorf("ortlib: read %s: %v: %w", path, x.tag, err)
		}
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				if d != "" {
					*x.dst = append(*x.dst, d)
				}
			}
		}
	}
	return info, nil
}

// expand replaces $ORIGIN (and ${ORIGIN}) by the object's folder.
func (e *elfInfo) expand(dirs []string) []string {
	origin := filepath.Dir(e.path)
	out := make([]string, len(dirs))
	for i, d := range dirs {
		d = strings.ReplaceAll(d, "${ORIGIN}", origin)
		out[i] = strings.ReplaceAll(d, "$ORIGIN", origin)
	}
	return out
}

// accepts reports whether path is an ELF file the loader would take for
// this object: same class and machine.
func (e *elfInfo) accepts(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Class == e.class && f.Machine == e.machine
}
