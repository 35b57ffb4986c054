// Package progress is the one shape in which tlearn's long jobs report what
// they are doing: dataset conversion and copies, model downloads, feature
// extraction, classification, head training and fine-tuning. The CLI draws a
// bar or prints plain lines from it; tests record it.
//
// It owns the Reporter interface and two trivial implementations (Nop and
// Recorder). It must not import any other tlearn package: every package that
// does long work imports it, so it sits at the bottom of the graph.
package progress
