// Package recipe holds the numerical pieces that head.Train and
// finetune.FineTune must share bit for bit, so that a fine-tune with block5
// frozen takes the same steps as Train with the same seed: the streams of
// the seeded generators, the dropout masks, the log-sum-exp and the
// smoothed cross-entropy, and the balanced class weights.
//
// It is internal so that head's exported API stays the dense head's. It
// imports only the standard library.
package recipe
