// Package ortlibtest initializes ONNX Runtime for tests and benchmarks
// (Init), failing the test with the install hint when the library is
// missing. It is a package of its own so that production code never links
// "testing": only _test.go files and test fixture packages (such as
// extractor/internal/extractortest) may import it. It imports
// internal/ortlib and nothing else of tlearn.
package ortlibtest
