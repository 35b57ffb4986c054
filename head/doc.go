// Package head trains the classifier that sits on top of a frozen backbone:
// the dense head of the reference tutorial (Dense(1024, ReLU) → Dropout(0.5)
// → Dense(K) → softmax) on cached features, and it owns everything a
// training run leaves behind — the weights file, the history, the metrics,
// the plots and the layout of the run directory — so that the fine-tune
// trainer (FineTune, in this package too) and the exporter share one format.
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
// FineTune trains block5 and the head together by running the training graph
// that package models generates; it is the one place here that opens ONNX
// Runtime sessions (the caller initializes the library). The package must
// not open caches or prepared models itself: callers (cmd/tlearn) hand it
// data, weights and paths.
package head
