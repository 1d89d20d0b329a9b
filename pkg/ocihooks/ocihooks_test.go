package ocihooks

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRunPassesStateAndArgs(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	hooks := []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", `cat > "$0"; echo "$HOOKVAR" > "$0.env"`, out}, Env: []string{"HOOKVAR=yes"}}}
	state := specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreated, Pid: 42, Bundle: "/b"}
	if err := Run("prestart", hooks, state); err != nil {
		t.Fatal(err)
	}
	var got specs.State
	data, _ := os.ReadFile(out)
	if err := json.Unmarshal(data, &got); err != nil || got.ID != "c1" || got.Pid != 42 || got.Status != specs.StateCreated {
		t.Fatalf("the hook read %q (%v), want the state of c1", data, err)
	}
	if env, _ := os.ReadFile(out + ".env"); strings.TrimSpace(string(env)) != "yes" {
		t.Fatalf("the hook's environment gave %q, want config.json's HOOKVAR=yes", env)
	}
}

func TestRunStopsAtFailure(t *testing.T) {
	dir := t.TempDir()
	second := filepath.Join(dir, "second")
	hooks := []specs.Hook{
		{Path: "/bin/sh", Args: []string{"sh", "-c", "echo broken >&2; exit 3"}},
		{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + second}},
	}
	err := Run("createRuntime", hooks, specs.State{})
	if err == nil || !strings.Contains(err.Error(), "createRuntime hook 0") || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("Run = %v, want the first hook's failure with its output", err)
	}
	if _, err := os.Stat(second); err == nil {
		t.Fatal("the hook after a failed one ran")
	}
}

func TestRunTimeout(t *testing.T) {
	one := 1
	err := Run("poststart", []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Timeout: &one}}, specs.State{})
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("Run = %v, want a timeout", err)
	}
}

func TestRunAllGoesOn(t *testing.T) {
	dir := t.TempDir()
	second := filepath.Join(dir, "second")
	hooks := []specs.Hook{
		{Path: "/bin/false", Args: []string{"false"}},
		{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + second}},
	}
	err := RunAll("poststart", hooks, specs.State{})
	if err == nil || !strings.Contains(err.Error(), "poststart hook 0 (/bin/false)") {
		t.Fatalf("RunAll = %v, want the failure of hook 0", err)
	}
	if _, err := os.Stat(second); err != nil {
		t.Fatal("the hook after a failed one did not run")
	}
}
