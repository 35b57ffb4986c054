// Package realdata finds the real models and data that the repository does
// not hold, for the tests and benchmarks tagged realdata (`make bench` runs
// them with -tags realdata): the shared folder is $TLEARN_SHARED when set,
// else ../shared next to the checkout (the module's root folder).
//
// It owns that one lookup and the failure that names the missing path: a
// realdata test fails, never skips, when its data is absent. Only tests
// import it: production code must not, and it imports no tlearn package.
package realdata
