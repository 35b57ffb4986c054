package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"testing"
)

// Fixtures for the tests, all generated here: IDX files, plain or gzipped.

// idxFile builds an IDX file of unsigned bytes.
func idxFile(dims []int, data []byte) []byte {
	out := []byte{0, 0, idxUnsignedByte, byte(len(dims))}
	for _, d := range dims {
		out = binary.BigEndian.AppendUint32(out, uint32(d))
	}
	return append(out, data...)
}

func gzipped(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
