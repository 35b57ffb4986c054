// Package extractor runs a prepared backbone (extractor.onnx) under ONNX
// Runtime and streams a dataset through it into a feature cache
// (extractor/cache): pooled features always, block4_pool maps on request.
//
// An Extractor owns one ORT session with its input and output tensors,
// allocated once for a batch size and input size and refilled in place.
// Extract decodes and resizes the next batch (dataset.Loader, one batch
// ahead) while the current one runs, writes each batch's rows in place and
// records them chunk by chunk, so that a cancelled or killed run resumes
// without recomputing finished chunks and ends with the same bytes as an
// uninterrupted run.
//
// Views (Settings.Views, Augment): each image goes through the backbone K
// times, plainly and as K-1 seeded augmentations (dataset.Augment.Draw),
// one after another in the batches; a batch may end inside an image's
// views, whose outputs wait for the next batch, so that rows are written
// whole. Chunks hold whole batches, so resuming cuts the same batches.
//
// Bad images: before a new cache is allocated, a check pass reads every
// image's header and end marker (and fully decodes the few that look
// suspicious), so N is known up front; bad files fail the run naming the
// file, or with Settings.SkipBad are left out and listed in the manifest.
// An image that passes the check but fails to decode during extraction
// (damage in the middle of the data) stops the run, or with SkipBad is
// dropped from the cache: N shrinks in place, which moves only unfinished
// rows (cache.Writer.Drop).
//
// Labelling images with an exported classifier is extractor/classify's job.
//
// The package must not parse image formats itself beyond that check, nor
// train anything: decoding belongs to dataset, the cache format to
// extractor/cache, training to head. It imports dataset, models,
// extractor/cache and internal/ortlib, and must not import head or
// extractor/classify.
package extractor
