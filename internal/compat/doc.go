// Package compat holds only tests: they read what an older tlearn wrote
// (testdata/v1, made by scripts/gen-fixtures.sh with the binary of commit
// 25765e1, before the package split of issue 9) with today's library code.
// The tests open its two feature caches (extractor/cache), its prepared model
// (models), its head-only and fine-tuned run folders (head/run), evaluate both
// runs again (head, head/finetune) against what the old binary reported, and
// export the runs as classifiers (internal/experiment, models/classifier).
//
// A failure here means that a change broke files that users already have on
// disk: fix the reader, or bump the format and say so in the release notes;
// never regenerate the fixtures to make it pass.
//
// The package has no code besides this comment, so nothing may import it, and
// it imports nothing outside its tests.
package compat
