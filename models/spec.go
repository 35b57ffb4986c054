package models

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tlearn/tlearn/dataset"
	"github.com/tlearn/tlearn/internal/fsutil"
)

// ExtractorFile is the model inside a prepared model folder, next to its
// spec.json (DESIGN.md, "Files on disk"); ReadSpec and WriteSpec handle
// the spec.
const ExtractorFile = "extractor.onnx"

const (
	specFile   = "spec.json"
	specFormat = 1 // the spec.json format this tlearn writes and reads
)

// Tensor names that every prepared extractor.onnx uses.
const (
	FeaturesOutput = "features" // [N,D] pooled features
	MapsOutput     = "maps"     // [N,512,H/16,W/16] block4_pool, NCHW (VGG only)
)

// Spec describes a prepared model; it is written as DIR/spec.json next to
// DIR/extractor.onnx.
type Spec struct {
	Format        int                   `json:"format"`
	Preset        string                `json:"preset"` // "vgg16-torchvision", "vgg16-keras" or "custom"
	Preprocessing dataset.Preprocessing `json:"preprocessing"`
	Input         string                `json:"input"`        // input name of extractor.onnx (layout in Preprocessing.Layout)
	DefaultSize   int                   `json:"default_size"` // square input side the backbone was trained at
	FixedSize     int                   `json:"fixed_size,omitempty"`
	SizeMultiple  int                   `json:"size_multiple,omitempty"` // input sides must be multiples of this (32 for VGG)
	Features      FeaturesSpec          `json:"features"`
	Maps          *MapsSpec             `json:"maps,omitempty"`   // nil when the backbone is not VGG-shaped
	Block5        *Block5Spec           `json:"block5,omitempty"` // nil when the backbone is not VGG-shaped
	Source        SourceSpec            `json:"source"`
	// ExtractorSHA256 is the hex sha256 of the extractor.onnx written next
	// to this spec: ReadExtractor and ExtractorSHA256 refuse a file that
	// no longer has it. Empty in folders prepared before tlearn recorded it
	// (they load unchecked; NoSHA256Note says so).
	ExtractorSHA256 string `json:"extractor_sha256,omitempty"`
	// Quantization is set on a model that `models quantize` made from a
	// float32 prepared model (models/quantize); nil on a float32 model.
	Quantization *QuantizationSpec `json:"quantization,omitempty"`
}

// QuantizationSpec records how an int8 extractor was made: from which
// float32 extractor, with which scheme, calibrated on which images. Its
// block5 float32 weights stay in extractor.onnx under the names of
// Spec.Block5 (unused by its nodes: fine-tuning starts from them), while
// the graph runs block5 on the int8 weights named here.
type QuantizationSpec struct {
	// Scheme names the quantization: SchemeInt8QDQ.
	Scheme string `json:"scheme"`
	// FromSHA256 is the sha256 of the float32 extractor.onnx quantized.
	FromSHA256 string `json:"from_extractor_sha256"`
	// Calibration is what the activation ranges were measured on.
	Calibration CalibrationSpec `json:"calibration"`
	// Block5Weights and Block5Biases name the dequantized int8 weights and
	// int32 biases that block5's convolutions take in the graph, in the
	// order of Spec.Block5 (empty when the model has no block5).
	Block5Weights [3]string `json:"block5_int8_weights,omitempty"`
	Block5Biases  [3]string `json:"block5_int32_biases,omitempty"`
	// Maps says what the maps output is computed by: "int8" (block4_pool of
	// the int8 graph, dequantized to float32).
	Maps string `json:"maps,omitempty"`
}

// SchemeInt8QDQ is static int8 quantization in ONNX's QDQ form: int8
// weights symmetric per output channel, int32 biases, uint8 activations
// with one scale per tensor calibrated by min/max.
const SchemeInt8QDQ = "int8-qdq-static-minmax"

// CalibrationSpec is the calibration set of a quantized model.
type CalibrationSpec struct {
	Data   string `json:"data"`   // the dataset folder, absolute
	Images int    `json:"images"` // images used
	Seed   uint64 `json:"seed"`   // seed of the sample
	Size   int    `json:"size"`   // input side they were resized to
	// FilesSHA256 is the hex sha256 of the sampled files' paths (relative
	// to Data, one a line, in the order used).
	FilesSHA256 string `json:"files_sha256"`
}

// Int8 reports whether the prepared model is an int8 quantized one.
func (s *Spec) Int8() bool { return s != nil && s.Quantization != nil }

// QuantizationScheme is the scheme of an int8 model, "" for float32.
func (s *Spec) QuantizationScheme() string {
	if !s.Int8() {
		return ""
	}
	return s.Quantization.Scheme
}

// FeaturesSpec is the pooled-features output.
type FeaturesSpec struct {
	Name   string `json:"name"`   // always FeaturesOutput
	Dim    int    `json:"dim"`    // D
	Tensor string `json:"tensor"` // the source model's tensor that is pooled
}

// MapsSpec is the block4_pool output used for fine-tuning.
type MapsSpec struct {
	Name     string `json:"name"`     // always MapsOutput
	Channels int    `json:"channels"` // 512 for VGG16
	Stride   int    `json:"stride"`   // input side / map side (16)
	Tensor   string `json:"tensor"`   // the source model's block4_pool tensor
}

// Block5Spec names block5's convolution parameters, as initializers of
// extractor.onnx, in order conv1..conv3.
type Block5Spec struct {
	ConvWeights [3]string `json:"conv_weights"`
	ConvBiases  [3]string `json:"conv_biases"`
	Channels    int       `json:"channels"`
}

// SourceSpec identifies the file the model was prepared from.
type SourceSpec struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// ErrNotPrepared is returned when a folder holds no prepared model.
var ErrNotPrepared = errors.New("models: not a prepared model folder")

// ErrChanged is wrapped by the error about an extractor.onnx whose sha256
// is not the one its spec.json recorded when the model was prepared: the
// file was changed or damaged since, and only preparing it again mends it.
var ErrChanged = errors.New("models: extractor.onnx changed since it was prepared")

// NoSHA256Note is the one-line note for a prepared model folder whose
// spec.json records no sha256 of its extractor.onnx (one prepared before
// tlearn recorded it): the model loads, unchecked.
func NoSHA256Note(dir string) string {
	return fmt.Sprintf("note: %s was prepared by an older tlearn and records no sha256 of %s; it is loaded unchecked (prepare it again to have it checked)",
		dir, ExtractorFile)
}

// ReadSpec reads and checks DIR/spec.json.
func ReadSpec(dir string) (*Spec, error) {
	path := filepath.Join(dir, specFile)
	b, err := fsutil.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("models: %s: %w", path, ErrNotPrepared)
		}
		return nil, fmt.Errorf("models: read %s: %w", path, err)
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("models: %s: %w", path, err)
	}
	if s.Format != specFormat {
		return nil, fmt.Errorf("models: %s: format %d, this tlearn reads %d", path, s.Format, specFormat)
	}
	if err := s.Preprocessing.Validate(); err != nil {
		return nil, fmt.Errorf("models: %s: %w", path, err)
	}
	if s.Input == "" || s.Features.Name == "" || s.Features.Dim <= 0 {
		return nil, fmt.Errorf("models: %s: missing input or features", path)
	}
	return &s, nil
}

// ReadExtractor reads DIR/extractor.onnx and returns its bytes and their
// hex sha256, the prepared model's identity that caches, run folders and
// classifiers record. Callers that load the model hash the bytes they
// load, so that the recorded sha256 names exactly the model that ran. A
// sha256 other than the one DIR/spec.json records is an error wrapping
// ErrChanged; a spec.json without one (an older tlearn's) is not checked.
func ReadExtractor(dir string) (onnx []byte, sum string, err error) {
	return hashExtractor(dir, true)
}

// ExtractorSHA256 is the hex sha256 of DIR/extractor.onnx (see
// ReadExtractor), read as a stream: a full VGG16 is half a gigabyte.
func ExtractorSHA256(dir string) (string, error) {
	_, sum, err := hashExtractor(dir, false)
	return sum, err
}

// hashExtractor hashes DIR/extractor.onnx and, with keep, returns its bytes.
func hashExtractor(dir string, keep bool) ([]byte, string, error) {
	path := filepath.Join(dir, ExtractorFile)
	f, err := fsutil.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("models: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	var w io.Writer = h
	var buf *bytes.Buffer
	if keep {
		st, err := f.Stat()
		if err != nil {
			return nil, "", fmt.Errorf("models: %w", err)
		}
		buf = bytes.NewBuffer(make([]byte, 0, st.Size()+bytes.MinRead))
		w = io.MultiWriter(h, buf)
	}
	if _, err := io.Copy(w, f); err != nil {
		return nil, "", fmt.Errorf("models: read %s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := checkRecorded(dir, path, sum); err != nil {
		return nil, "", err
	}
	var b []byte
	if keep {
		b = buf.Bytes()
	}
	return b, sum, nil
}

// checkRecorded compares the sha256 of DIR/extractor.onnx (at path) with
// the one DIR/spec.json records, if it records one. A missing or
// unreadable spec.json is left to ReadSpec to report.
func checkRecorded(dir, path, sum string) error {
	b, err := os.ReadFile(filepath.Join(dir, specFile))
	if err != nil {
		return nil
	}
	var rec struct {
		SHA256 string `json:"extractor_sha256"`
	}
	if json.Unmarshal(b, &rec) != nil || rec.SHA256 == "" || rec.SHA256 == sum {
		return nil
	}
	return fmt.Errorf("%w: %s has sha256 %.12s…, %s records %.12s… (the file was changed or damaged after it was prepared)",
		ErrChanged, path, sum, filepath.Join(dir, specFile), rec.SHA256)
}

// WriteSpec writes DIR/spec.json atomically.
func WriteSpec(dir string, s *Spec) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFile(filepath.Join(dir, specFile), append(b, '\n'), 0o644)
}
