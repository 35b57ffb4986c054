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
