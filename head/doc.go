// Package head trains the classifier that sits on top of a frozen backbone:
// the dense head of the reference tutorial (Dense(1024, ReLU) → Dropout(0.5)
// → Dense(K) → softmax) on cached features. It owns the head's weights and
// their safetensors encoding (Weights), the evaluation metrics (Tally,
// Report) and the per-epoch history (Epoch, History); package head/run puts
// them into run directories and head/finetune trains block5 with the same
// head numerics.
//
// Train works on plain float32 slices (Data), usually the read-only memory
// maps of a feature cache; it never writes into them. The arithmetic is
// float32 (with float64 losses and metrics): float64 has twice the memory
// traffic and half the vector width (gonum's float64 products measured
// 1.3–1.6× slower than its float32 ones on the reference shapes). The products
// of every step run on register-tiled AVX-512 or AVX2/FMA kernels in Go
// assembly (package head/internal/kernel) where the CPU has them; elsewhere
// on OpenBLAS when built with the `openblas` tag, else on gonum's pure-Go
// BLAS. The hidden kernel is stored in 32-column panels so that the
// kernels read it sequentially, the Adam update of each panel block runs
// right after its gradient while both are in cache (the gradient of the
// large matrix never goes to memory), and every buffer is allocated once
// per Train call.
//
// Numerics follow the reference: Glorot-uniform weights and zero biases,
// inverted dropout, softmax cross-entropy computed from the log-sum-exp,
// and Adam in Kingma & Ba's form with β1 = 0.9, β2 = 0.999, ε = 1e-7 and
// bias correction (DESIGN.md). A fixed Settings.Seed gives bit-identical
// runs on the same machine and kernel.
//
// Data may hold K views of every row (augmented copies of one image, a
// cache made with extract --views): training draws one per row per epoch
// (DrawView, a pure function of seed, epoch and row, applied by a
// ViewSampler where a step gathers its batch), and validation and Evaluate
// average the views' probabilities (test-time augmentation). One view
// leaves every step bit for bit as it was.
//
// RunEpochs is the epoch loop of every trainer (Train here, FineTune in
// head/finetune): shuffling, batching, the best epoch, early stopping,
// the history and the progress reports (internal/progress: a phase
// "epoch N/E" of images per epoch, then the epoch's Line). Epochs are
// counted from 1. With Settings.Holdout the best epoch and early stopping
// go by a holdout that CarveHoldout sets aside from the training rows, so
// that the validation set is only reported.
//
// The package imports only gonum, the standard library and internal
// helpers: no ONNX Runtime, no models, no head/run or head/finetune, and
// no files (it opens no caches, run directories or prepared models;
// callers hand it data and weights).
package head
