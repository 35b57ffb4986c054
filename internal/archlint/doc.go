// Command archlint checks that tlearn's packages import only what
// ARCHITECTURE.md allows. It reads the rules from the fenced ```imports
// block of ARCHITECTURE.md (the one map of record), lists every package of
// the module with `go list`, and fails naming each forbidden import.
//
//	go run ./internal/archlint            # from the repository root; `make lint` runs it
//	go run ./internal/archlint -rules FILE -C DIR
//
// Rules, one per line:
//
//	PKG: DEP DEP ...     PKG may import these tlearn packages and no other
//	!EXT: PKG PKG ...    only these packages may import the outside module EXT
//
// PKG and DEP are paths relative to the module ("head/finetune"); a
// trailing "/..." matches the package and every package below it. A tlearn
// package without a rule of its own is an error, so that a new package
// cannot slip past the map. Only the packages' own files are checked: tests
// may import whatever builds their fixtures.
//
// archlint must not import any tlearn package: it checks them.
package main
