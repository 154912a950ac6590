package discover

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// helperEnv, when set, makes TestDiscoverHelper run discovery with the
// JSON-encoded Options it holds and write the devices as JSON to the file
// named by helperOutEnv. Namespace tests run the test binary this way
// inside a network namespace.
const (
	helperEnv    = "IOTCOP_DISCOVER_HELPER_OPTIONS"
	helperOutEnv = "IOTCOP_DISCOVER_HELPER_OUT"
)

func TestDiscoverHelper(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("helper for the network namespace tests; runs only when they start it")
	}
	var opts Options
	if err := json.Unmarshal([]byte(raw), &opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	devices, err := Run(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(devices, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(helperOutEnv), out, 0o644); err != nil {
		t.Fatal(err)
	}
}
