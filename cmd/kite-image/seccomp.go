package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kite-runtime/kite/stage0/seccompbpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompAction compiles the runtime-spec seccomp profile on stdin to BPF, written atomically to
// the file --out names:
//
//	seccomp --out FILE [--require SYSCALL,...]
//
// --require lists the system calls that must exist (the ones the user named).
type seccompAction struct {
	out, require string
}

func (a *seccompAction) flags(fs *flag.FlagSet) {
	fs.StringVar(&a.out, "out", "", "file to write the BPF program to")
	fs.StringVar(&a.require, "require", "", "system calls that must be known")
}

func (a *seccompAction) parse(args []string) error {
	if a.out == "" || len(args) != 0 {
		return usageError(errors.New("seccomp --out FILE [--require SYSCALL,...] < PROFILE"))
	}
	return nil
}

func (a *seccompAction) needsStore() bool { return false }

func (a *seccompAction) run(_ context.Context, _ *globals) error {
	var profile specs.LinuxSeccomp
	if err := json.NewDecoder(os.Stdin).Decode(&profile); err != nil {
		return fmt.Errorf("read the seccomp profile: %w", err)
	}
	var required []string
	if a.require != "" {
		required = strings.Split(a.require, ",")
	}
	dir := filepath.Dir(a.out)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("compile the seccomp profile: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".compile-*")
	if err != nil {
		return fmt.Errorf("compile the seccomp profile: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = seccompbpf.Compile(&profile, required, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Pods started at once may compile the same profile: each renames a whole file into place.
	if err := os.Rename(tmp.Name(), a.out); err != nil {
		return fmt.Errorf("compile the seccomp profile: %w", err)
	}
	return nil
}
