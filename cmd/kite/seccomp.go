package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompFilter returns profile compiled to BPF. Compiling needs libseccomp, which kite does not
// link: kite-image compiles a profile the first time it is used, into a file named by the
// profile's hash, and every later pod with the same profile loads that file.
func seccompFilter(h *imageHelper, profile *specs.LinuxSeccomp, names []string) ([]byte, error) {
	if profile == nil {
		return nil, nil
	}
	doc, err := json.Marshal(profile)
	if err != nil {
		return nil, fmt.Errorf("encode the seccomp profile: %w", err)
	}
	// The filter also depends on the architecture kite runs on.
	sum := sha256.Sum256(append([]byte(runtime.GOARCH+"\n"), doc...))
	path := filepath.Join(h.dir.SeccompFilters(), hex.EncodeToString(sum[:])+".bpf")
	filter, err := os.ReadFile(path)
	if err == nil {
		return filter, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the compiled seccomp filter: %w", err)
	}
	args := []string{"seccomp", "--out", path}
	if len(names) > 0 {
		args = append(args, "--require", strings.Join(names, ","))
	}
	if _, err := h.runInput(bytes.NewReader(doc), args...); err != nil {
		return nil, err
	}
	if filter, err = os.ReadFile(path); err != nil {
		return nil, fmt.Errorf("read the compiled seccomp filter: %w", err)
	}
	return filter, nil
}
