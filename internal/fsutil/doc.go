// Package fsutil writes files atomically: to a temporary name in the same
// folder, synced, then renamed over the final name, so that a reader sees
// either the old complete file or the new complete one, never a torn write.
// Every file tlearn produces goes through it. It also formats file sizes
// for people (FormatBytes), so that every size tlearn prints uses one unit
// system, and opens files from outside (Open, ReadFile) only when they are
// not a FIFO, device or socket, whose reading could block for ever.
//
// It also guards outputs before any work starts: CheckOutput refuses an
// output that is one of the command's inputs, lies inside one or holds one
// (symbolic links resolved), and CheckReplace lets --force replace only a
// folder that the caller recognises as tlearn's own (by its marker or
// manifest), naming what is inside anything else.
//
// It keeps one writer per output: LockOutput takes an advisory flock on a
// hidden sibling ".NAME.lock" (beside the output, not in it, so that a
// finished folder can still be renamed over the output) and a second
// writer gets a *LockedError naming the holder's pid and command. Holding
// it, RemoveStale clears the ".NAME.partial-*" and ".NAME.tmp-*" that a
// killed earlier writer of the same output left.
//
// It holds no other logic and must not import any other tlearn package:
// nearly all of them import it.
package fsutil
