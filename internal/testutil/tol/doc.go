// Package tol is the one float-tolerance check of tlearn's tests: a value
// is close to the wanted one when it lies within an absolute plus a
// relative tolerance, abs + rel·|want|, and NaN is close to nothing.
//
// It owns that rule (Close), its element-wise form with a readable report
// (Floats), and the scale for a tolerance relative to a whole tensor
// (MaxAbs). Only tests import it: production code must not, and it imports
// no tlearn package.
package tol
