package models

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExtractorSHA256 checks that the model's identity is the sha256 of
// extractor.onnx's bytes, whether they are kept or only hashed.
func TestExtractorSHA256(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := WriteTinyPrepared(dir, 2); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, ExtractorFile))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(want)
	wantSHA := hex.EncodeToString(sum[:])
	b, sha, err := ReadExtractor(dir)
	if err != nil || !bytes.Equal(b, want) || sha != wantSHA {
		t.Fatalf("ReadExtractor: %d bytes, sha256 %s, %v; want %d bytes, %s", len(b), sha, err, len(want), wantSHA)
	}
	if sha, err := ExtractorSHA256(dir); err != nil || sha != wantSHA {
		t.Fatalf("ExtractorSHA256: %s, %v; want %s", sha, err, wantSHA)
	}
	empty := t.TempDir()
	if _, err := ExtractorSHA256(empty); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(empty, ExtractorFile)) {
		t.Fatalf("missing extractor: %v, want an error naming the file", err)
	}
}

// TestExtractorChecked: spec.json records extractor.onnx's sha256, and a
// changed file is refused naming it; a spec without the sha256 (an older
// tlearn's) loads unchecked.
func TestExtractorChecked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec, err := WriteTinyPrepared(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, ExtractorFile)
	b, _ := os.ReadFile(p)
	sum := sha256.Sum256(b)
	if spec.ExtractorSHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("spec.json records sha256 %q, the file has %x", spec.ExtractorSHA256, sum)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadExtractor(dir); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadExtractor of a changed file: %v; want ErrChanged naming %s", err, p)
	}
	if _, err := ExtractorSHA256(dir); !errors.Is(err, ErrChanged) {
		t.Errorf("ExtractorSHA256 of a changed file: %v; want ErrChanged", err)
	}
	spec.ExtractorSHA256 = ""
	if err := WriteSpec(dir, spec); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadExtractor(dir); err != nil {
		t.Errorf("ReadExtractor with a spec of an older tlearn: %v", err)
	}
}
