// Command tlearn is image transfer learning from the command line: cache a
// frozen backbone's features once, train heads on the cache in seconds,
// fine-tune VGG16's block5, export one ONNX classifier and classify folders.
//
// This package owns flags, --help texts, progress bars, exit codes, output
// formatting and the advice that names a flag (advice.go). The jobs are
// library calls: internal/experiment runs extraction, training, fine-tuning,
// export, the sweep and compare from folders to folders, on dataset, models,
// extractor and head and their sub-packages. One file per subcommand
// (cmd_*.go); flag names are constants in flags.go. ONNX Runtime is
// initialized once per process (initORT, main.go).
//
// It must hold no training, sweep, graph or file-format logic, and must not
// import onnxruntime_go or gonum (main_test.go checks both).
package main
