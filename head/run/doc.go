// Package run reads and writes run directories, the folders that `tlearn
// train` and `tlearn finetune` leave behind:
//
//	settings.json        Info (where the features came from) and the settings
//	weights.safetensors  the weights (head.Weights.Encode's format)
//	history.csv          one line per epoch, Keras CSVLogger's columns
//	metrics.json         Metrics: the final and best epochs, the validation report
//	curves.png           accuracy and loss per epoch (PlotCurves)
//	confusion.png        the validation confusion matrix (PlotConfusion); above
//	                     head.MaxConfusionClasses classes, the top confusions
//
// A run directory appears complete or not at all (Dir, Write). Epochs are
// counted from 1 in every file; readers shift the files of older tlearn,
// which counted from 0.
//
// The package owns file names, layouts and atomic writes; it does no
// training and must not import ONNX Runtime, models or head/finetune: the
// numbers it stores come from package head's types.
package run
