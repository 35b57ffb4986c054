// Package extractortest holds the fixtures that the tests of extractor and
// extractor/classify share: the tiny prepared VGG and class folders of
// seeded images. Only tests import it: production code must not (it links
// "testing"). It imports models and internal/ortlib/ortlibtest, nothing
// else of tlearn.
package extractortest
