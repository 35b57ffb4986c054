package models

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadSpec feeds outside bytes to ReadSpec: an accepted spec.json
// passes its checks and reads back the same once written.
func FuzzReadSpec(f *testing.F) {
	dir := f.TempDir()
	spec, err := WriteTinyPrepared(dir, 1)
	if err != nil {
		f.Fatal(err)
	}
	valid, err := os.ReadFile(filepath.Join(dir, specFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	custom := *spec
	custom.Preset, custom.Maps, custom.Block5, custom.ExtractorSHA256 = "custom", nil, nil, ""
	if err := WriteSpec(dir, &custom); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, specFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, specFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := ReadSpec(dir)
		if err != nil {
			return
		}
		if s.Format != specFormat || s.Input == "" || s.Features.Dim <= 0 || s.Preprocessing.Validate() != nil {
			t.Fatalf("ReadSpec accepted %+v", s)
		}
		first, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteSpec(dir, s); err != nil {
			t.Fatal(err)
		}
		s2, err := ReadSpec(dir)
		if err != nil {
			t.Fatalf("written spec does not read back: %v", err)
		}
		if again, _ := json.Marshal(s2); !bytes.Equal(first, again) {
			t.Fatalf("spec changed on a second read:\n%s\n%s", first, again)
		}
	})
}
