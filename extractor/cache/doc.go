// Package cache owns the on-disk feature cache: a folder with manifest.json
// and NumPy .npy arrays (features.npy float32 [N,D], labels.npy int32 [N],
// optionally maps.npy float16 [N,C,h,w]).
//
// A cache of K > 1 augmented views per image (Manifest.Views, Augment) has
// a second axis in the image arrays: features.npy [N,K,D] and maps.npy
// [N,K,C,h,w], view 0 being the plain image, so x[:, 0] in NumPy is the
// plain cache and a row (image) stays the unit of chunks and checksums. A
// cache of one view keeps the plain layout and manifest byte for byte; the
// fingerprint hashes views and augmentation only when K > 1
// (BaseFingerprint compares features whatever the views).
//
// It is a package of its own, below the extractor that writes caches,
// because the format has one writer and several readers: the extractor fills
// caches; the CLI, the experiments and library users read them into
// head.Data or finetune.MapsData. Keeping the format here lets the readers
// open a cache without importing the extractor (and with it ONNX Runtime),
// and keeps the rules that make a cache resumable and verifiable in one
// place. It must not know about images, models or training (it imports no
// other tlearn package but internal/fsutil): it stores arrays and the
// manifest that describes them.
//
// Writing: Create preallocates every array with its final N in the header
// (the file has its final size from the start) and Writer fills it in place
// one chunk of rows at a time. After a chunk's rows are written, the array
// files are fsynced and then manifest.json, which lists the finished row
// ranges with a CRC-32C per array, is replaced atomically. A run killed at
// any point therefore leaves a manifest that names only rows that are on
// disk, and Resume continues with the others. An .npy file always has a
// valid header, so np.load(path, mmap_mode="r") works on every array, even
// of an unfinished cache (unfinished rows read as zeros).
//
// Reading: Open accepts complete caches only and memory-maps the arrays
// read-only, so that a reader's memory does not grow with the dataset. It
// checks every chunk of the arrays it maps against the manifest's CRC-32C
// (OpenFeatures leaves maps.npy unmapped and unread), so a reader never
// computes on bytes changed after extraction.
//
// Shards: a sharded extraction writes N ordinary caches of contiguous,
// batch-aligned runs of rows (ShardRange), each with a ShardRef in its
// manifest. Merged checks that the shards make one cache and gives its
// manifest (a single run's, the chunk size of N rows included); Merge
// copies the arrays, checking every shard chunk's CRC-32C and computing the
// merged chunks' from the same bytes, and writes the manifest last.
package cache
