// Package seccompbpf owns compiling a runtime-spec seccomp profile into the BPF program the
// kernel loads (seccomp(2), SECCOMP_SET_MODE_FILTER), with libseccomp. stage1 loads the result
// as it is, so that neither libseccomp nor a compile is on the path of every pod's start.
package seccompbpf

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Compile writes profile's filter to out as BPF. A system call libseccomp does not know is left
// out of the filter (Docker's profile names calls newer than many libseccomp releases), unless it
// is in required, which makes it an error.
func Compile(profile *specs.LinuxSeccomp, required []string, out *os.File) error {
	if len(profile.Flags) > 0 || profile.ListenerPath != "" {
		return fmt.Errorf("compile the seccomp profile: flags and listeners are not supported")
	}
	def, err := action(profile.DefaultAction, profile.DefaultErrnoRet)
	if err != nil {
		return err
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return fmt.Errorf("compile the seccomp profile: %w", err)
	}
	defer f.Release()
	for _, a := range profile.Architectures {
		arch, err := libseccomp.GetArchFromString(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
		if err != nil {
			return fmt.Errorf("compile the seccomp profile: architecture %s: %w", a, err)
		}
		if err := f.AddArch(arch); err != nil {
			return fmt.Errorf("compile the seccomp profile: add architecture %s: %w", a, err)
		}
	}
	// stage1 sets no_new_privs itself, or leaves it off on purpose; the bit is for Load only.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return fmt.Errorf("compile the seccomp profile: %w", err)
	}
	// A binary tree of the system call numbers: fewer instructions run on every call.
	if err := f.SetOptimize(2); err != nil {
		return fmt.Errorf("compile the seccomp profile: %w", err)
	}
	for _, name := range required {
		if _, err := libseccomp.GetSyscallFromName(name); err != nil {
			return fmt.Errorf("--seccomp: unknown system call %q (libseccomp %s knows no such name)", name, libraryVersion())
		}
	}
	for _, rule := range profile.Syscalls {
		if err := addRule(f, def, rule); err != nil {
			return err
		}
	}
	// libseccomp reports any failed write of the export as ECANCELED ("operation canceled"),
	// which hides a full disk. Export to memory (a memfd: seccomp_export_bpf_mem needs libseccomp
	// 2.6) and write the program here, where the write's own error is kept.
	fd, err := unix.MemfdCreate("kite-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("compile the seccomp profile: %w", os.NewSyscallError("memfd_create", err))
	}
	mem := os.NewFile(uintptr(fd), "kite-seccomp-bpf")
	defer mem.Close()
	if err := f.ExportBPF(mem); err != nil {
		return fmt.Errorf("compile the seccomp profile: export: %w", err)
	}
	if _, err := mem.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("compile the seccomp profile: %w", err)
	}
	if _, err := io.Copy(out, mem); err != nil {
		return fmt.Errorf("compile the seccomp profile: %w", err)
	}
	return nil
}

func libraryVersion() string {
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}

func addRule(f *libseccomp.ScmpFilter, def libseccomp.ScmpAction, rule specs.LinuxSyscall) error {
	act, err := action(rule.Action, rule.ErrnoRet)
	if err != nil {
		return err
	}
	// libseccomp refuses a rule that would do what the filter does anyway.
	if act == def {
		return nil
	}
	// libseccomp takes one comparison per argument in a rule: several comparisons of one
	// argument become one rule each, any of which matches.
	var sets [][]libseccomp.ScmpCondition
	conds, repeated, err := conditions(rule.Args)
	if err != nil {
		return err
	}
	if repeated {
		for _, c := range conds {
			sets = append(sets, []libseccomp.ScmpCondition{c})
		}
	} else {
		sets = [][]libseccomp.ScmpCondition{conds}
	}
	for _, name := range rule.Names {
		call, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			continue // newer than this libseccomp; Compile checked the ones the user named
		}
		for _, set := range sets {
			if len(set) == 0 {
				err = f.AddRule(call, act)
			} else {
				err = f.AddRuleConditional(call, act, set)
			}
			if err != nil {
				return fmt.Errorf("compile the seccomp profile: rule for %s: %w", name, err)
			}
		}
	}
	return nil
}

func action(a specs.LinuxSeccompAction, errno *uint) (libseccomp.ScmpAction, error) {
	switch a {
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActErrno:
		e := uint(unix.EPERM)
		if errno != nil {
			e = *errno
		}
		return libseccomp.ActErrno.SetReturnCode(int16(e)), nil
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("compile the seccomp profile: action %q is not supported", a)
}

var operators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// conditions converts a rule's argument checks, and says whether one argument is checked twice.
func conditions(args []specs.LinuxSeccompArg) ([]libseccomp.ScmpCondition, bool, error) {
	var out []libseccomp.ScmpCondition
	var seen []uint
	repeated := false
	for _, a := range args {
		op, ok := operators[a.Op]
		if !ok {
			return nil, false, fmt.Errorf("compile the seccomp profile: unknown operator %q", a.Op)
		}
		values := []uint64{a.Value}
		if op == libseccomp.CompareMaskedEqual {
			values = []uint64{a.Value, a.ValueTwo}
		}
		c, err := libseccomp.MakeCondition(a.Index, op, values...)
		if err != nil {
			return nil, false, fmt.Errorf("compile the seccomp profile: argument %d: %w", a.Index, err)
		}
		repeated = repeated || slices.Contains(seen, a.Index)
		seen = append(seen, a.Index)
		out = append(out, c)
	}
	return out, repeated, nil
}
