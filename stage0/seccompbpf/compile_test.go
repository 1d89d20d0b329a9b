package seccompbpf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func compile(t *testing.T, p *specs.LinuxSeccomp, required ...string) ([]byte, error) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "filter.bpf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Compile(p, required, f); err != nil {
		return nil, err
	}
	return os.ReadFile(f.Name())
}

func TestCompile(t *testing.T) {
	errno := uint(38)
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "a_call_no_kernel_has"}, Action: specs.ActAllow},
			// Two checks of one argument: libseccomp takes them as two rules.
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0, Op: specs.OpEqualTo}, {Index: 0, Value: 8, Op: specs.OpEqualTo},
			}},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0x7e020000, ValueTwo: 0, Op: specs.OpMaskedEqual},
			}},
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: &errno},
			// The default action again: nothing to add.
			{Names: []string{"mount"}, Action: specs.ActErrno},
		},
	}
	b, err := compile(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || len(b)%8 != 0 {
		t.Fatalf("the filter is %d bytes, not a list of 8-byte instructions", len(b))
	}

	if _, err := compile(t, p, "read", "a_call_no_kernel_has"); err == nil || !strings.Contains(err.Error(), `"a_call_no_kernel_has"`) {
		t.Errorf("an unknown required call: %v", err)
	}
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"read"}, Action: specs.ActNotify})
	if _, err := compile(t, p); err == nil {
		t.Error("a notify action was compiled")
	}
}

// BenchmarkCompileDefault measures compiling Docker's default profile, which kite-image does once
// per distinct profile (kite then loads the cached BPF).
func BenchmarkCompileDefault(b *testing.B) {
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID"}
	profile, err := seccomp.GetDefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}})
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(filepath.Join(b.TempDir(), "filter.bpf"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for b.Loop() {
		if err := f.Truncate(0); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Seek(0, 0); err != nil {
			b.Fatal(err)
		}
		if err := Compile(profile, nil, f); err != nil {
			b.Fatal(err)
		}
	}
}
