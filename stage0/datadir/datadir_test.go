package datadir

import (
	"os"
	"strconv"
	"testing"
)

func TestDefaultAndConfigDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/xdg-data")
	t.Setenv("XDG_CONFIG_HOME", "/xdg-config")
	t.Setenv("HOME", "/home/u")
	if d, _ := Default(); d != "/xdg-data/kite" {
		t.Errorf("Default with XDG_DATA_HOME = %s", d)
	}
	if p, _ := ConfigDir(); PolicyFile(p) != "/xdg-config/kite/policy.json" {
		t.Errorf("PolicyFile with XDG_CONFIG_HOME = %s", PolicyFile(p))
	}
	// A relative XDG variable is ignored, as the XDG base directory specification says.
	t.Setenv("XDG_DATA_HOME", "relative")
	t.Setenv("XDG_CONFIG_HOME", "")
	if d, _ := Default(); d != "/home/u/.local/share/kite" {
		t.Errorf("Default from HOME = %s", d)
	}
	if p, _ := ConfigDir(); PolicyFile(p) != "/home/u/.config/kite/policy.json" {
		t.Errorf("PolicyFile from HOME = %s", PolicyFile(p))
	}
}

func TestHomeFromPasswd(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "")
	d, err := Default()
	if err != nil {
		t.Fatalf("Default without HOME (uid %s): %v", strconv.Itoa(os.Getuid()), err)
	}
	if d == "" || d[0] != '/' {
		t.Errorf("Default without HOME = %q, want an absolute path from the password database", d)
	}
}

// TestStorageRunPerRoot: stores below two data roots keep their per-boot state apart, even with
// one XDG_RUNTIME_DIR.
func TestStorageRunPerRoot(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	a, b := Dir{Root: "/data/a"}, Dir{Root: "/data/b"}
	if a.StorageRun() == b.StorageRun() {
		t.Errorf("two data roots share the run root %s", a.StorageRun())
	}
	if a.StorageRun() != (Dir{Root: "/data/a"}).StorageRun() {
		t.Error("the run root of a data root changes between calls")
	}
}
