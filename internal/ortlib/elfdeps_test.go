package ortlib

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gccShared builds a tiny shared library at dir/name from src, linked
// against the libraries in libs (found in libDirs), with extra linker flags.
func gccShared(t *testing.T, dir, name, src string, libDirs, libs, ldflags []string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is needed to build the test's shared libraries")
	}
	c := filepath.Join(t.TempDir(), "x.c")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	args := []string{"-shared", "-fPIC", "-o", out, c, "-Wl,--no-as-needed"}
	for _, d := range libDirs {
		args = append(args, "-L"+d)
	}
	for _, l := range libs {
		args = append(args, "-l"+l)
	}
	args = append(args, ldflags...)
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, b)
	}
	return out
}

// depFixture is libmain.so needing libdep.so (in sub/, reached through
// $ORIGIN/sub) and libgone.so (deleted after linking, as a CUDA library
// that the machine lacks), with RUNPATH or, with oldTags, RPATH.
type depFixture struct{ root, main, dep, sub string }

func newDepFixture(t *testing.T, oldTags bool) depFixture {
	root := t.TempDir()
	sub := filepath.Join(root, "sub")
	gone := filepath.Join(root, "gone")
	for _, d := range []string{sub, gone} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dep := gccShared(t, sub, "libdep.so", "int dep(void) { return 1; }\n", nil, nil, []string{"-Wl,-soname,libdep.so"})
	gccShared(t, gone, "libgone.so", "int gone(void) { return 2; }\n", nil, nil, []string{"-Wl,-soname,libgone.so"})
	tags := "-Wl,--enable-new-dtags"
	if oldTags {
		tags = "-Wl,--disable-new-dtags"
	}
	main := gccShared(t, root, "libmain.so", "int dep(void); int gone(void); int m(void) { return dep() + gone(); }\n",
		[]string{sub, gone}, []string{"dep", "gone"}, []string{tags, "-Wl,-rpath,$ORIGIN/sub"})
	if err := os.RemoveAll(gone); err != nil {
		t.Fatal(err)
	}
	return depFixture{root: root, main: main, dep: dep, sub: sub}
}

func depsByName(t *testing.T, r *Resolver, path string) map[string]Dependency {
	t.Helper()
	deps, err := r.Dependencies(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]Dependency{}
	for _, d := range deps {
		m[d.Name] = d
	}
	return m
}

func TestResolverRunpathOriginAndMissing(t *testing.T) {
	t.Parallel()
	f := newDepFixture(t, false)
	deps := depsByName(t, &Resolver{}, f.main)
	if d := deps["libdep.so"]; d.Path != f.dep || d.NeededBy != f.main {
		t.Errorf("libdep.so = %+v, want %s through RUNPATH $ORIGIN/sub", d, f.dep)
	}
	if d, ok := deps["libgone.so"]; !ok || !d.Missing() {
		t.Errorf("libgone.so = %+v (listed %v), want it missing", d, ok)
	}
	if d, ok := deps["libc.so.6"]; !ok {
		t.Error("libc.so.6 not listed")
	} else if d.Missing() {
		t.Logf("libc.so.6 missing with an empty resolver (no cache, no default dirs), as expected")
	}

	// LD_LIBRARY_PATH comes before RUNPATH; the ld.so cache and the
	// default folders after it; a file that is not ELF is skipped.
	other := t.TempDir()
	otherDep := gccShared(t, other, "libdep.so", "int dep(void) { return 3; }\n", nil, nil, nil)
	notELF := t.TempDir()
	if err := os.WriteFile(filepath.Join(notELF, "libgone.so"), []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	cached := gccShared(t, t.TempDir(), "libgone.so", "int gone(void) { return 4; }\n", nil, nil, nil)
	r := &Resolver{LDLibraryPath: []string{notELF, other}, Cache: map[string]string{"libgone.so": cached}, DefaultDirs: []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}}
	deps = depsByName(t, r, f.main)
	if got := deps["libdep.so"].Path; got != otherDep {
		t.Errorf("libdep.so at %s, want LD_LIBRARY_PATH's %s before RUNPATH", got, otherDep)
	}
	if got := deps["libgone.so"].Path; got != cached {
		t.Errorf("libgone.so at %s, want the cache's %s (the non-ELF file skipped)", got, cached)
	}
	if deps["libc.so.6"].Missing() {
		t.Error("libc.so.6 not found in the default folders")
	}
}

func TestResolverRpathBeforeLDLibraryPath(t *testing.T) {
	t.Parallel()
	f := newDepFixture(t, true)
	other := t.TempDir()
	gccShared(t, other, "libdep.so", "int dep(void) { return 3; }\n", nil, nil, nil)
	deps := depsByName(t, &Resolver{LDLibraryPath: []string{other}}, f.main)
	if got := deps["libdep.so"].Path; got != f.dep {
		t.Errorf("libdep.so at %s, want DT_RPATH's %s before LD_LIBRARY_PATH", got, f.dep)
	}
	if !deps["libgone.so"].Missing() {
		t.Errorf("libgone.so found at %s", deps["libgone.so"].Path)
	}
}

// The system's resolver (LD_LIBRARY_PATH, `ldconfig -p`, default folders)
// finds what ldd finds for a system binary.
func TestResolverSystem(t *testing.T) {
	t.Parallel()
	bin := "/bin/sh"
	if p, err := filepath.EvalSymlinks(bin); err == nil {
		bin = p
	}
	deps, err := NewResolver().Dependencies(bin)
	if err != nil {
		t.Skipf("%s: %v", bin, err)
	}
	for _, d := range deps {
		if d.Missing() {
			t.Errorf("%s's %s not found", bin, d.Name)
		}
	}
	if len(deps) == 0 {
		t.Errorf("%s: no dependencies listed", bin)
	}
}

func TestProvides(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"libcudart.so.12":   "CUDA 12",
		"libcublasLt.so.13": "cuBLAS of CUDA 13",
		"libcudnn.so.9":     "cuDNN 9",
		"libcufft.so.11":    "cuFFT",
		"libcuda.so.1":      "NVIDIA driver",
		"libfoo.so.2":       "apt-file search libfoo.so.2",
	} {
		if got := Provides(name); !strings.Contains(got, want) {
			t.Errorf("Provides(%s) = %q, want it to say %q", name, got, want)
		}
	}
}
