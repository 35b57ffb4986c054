package ortlib

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// Close destroys the process-wide environment that Init created and
// unloads the library; every session must be closed by then. cmd/tlearn
// calls it once, after its last command. It does nothing when Init did not
// succeed, and a later Init starts afresh.
func Close() error {
	mu.Lock()
	defer mu.Unlock()
	wasLoaded := done && initErr == nil
	done, initErr, loaded = false, nil, Candidate{}
	pluginState.tried, pluginState.err = false, nil
	if !wasLoaded || !ort.IsInitialized() {
		return nil
	}
	if err := ort.DestroyEnvironment(); err != nil {
		return fmt.Errorf("ortlib: destroy the environment: %w", err)
	}
	return nil
}
