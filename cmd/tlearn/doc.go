// Command tlearn is image transfer learning from the command line: cache a
// frozen backbone's features once, train heads on the cache in seconds,
// fine-tune VGG16's block5, export one ONNX classifier and classify folders.
//
// This package owns flags, progress, exit codes and output formatting; the ML
// lives in the dataset, models, extractor and head packages. One file per
// subcommand (cmd_*.go); flag names are constants in flags.go.
package main
