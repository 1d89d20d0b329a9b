package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// shell runs script in shell with kite first on PATH.
func shell(t *testing.T, shell, script string) string {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		needHost(t, "%s is not installed (apt-get install %s)", shell, shell)
	}
	cmd := exec.Command(path, "-c", script)
	cmd.Env = mergeEnv(os.Environ(), []string{"PATH=" + binDir + ":" + os.Getenv("PATH")})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -c %q: %v\n%s", shell, script, err, out)
	}
	return string(out)
}

// TestCompletion completes commands, subcommands and flags with the scripts kite completion
// prints, in bash and fish; zsh's must at least load.
func TestCompletion(t *testing.T) {
	bash := shell(t, "bash", `source <(kite completion bash)
complete_words() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _kite; echo "${COMPREPLY[*]}"; }
complete_words kite st
complete_words kite image ""
complete_words kite run --pull`)
	if want := "status stop\nlist inspect rm gc export verify\n--pull-policy\n"; bash != want {
		t.Errorf("bash completes\n%q\nwant\n%q", bash, want)
	}
	fish := shell(t, "fish", `kite completion fish | source; complete -C "kite st"; complete -C "kite gc --gr"`)
	if want := "status\nstop\n--grace-period\n"; fish != want {
		t.Errorf("fish completes\n%q\nwant\n%q", fish, want)
	}
	shell(t, "zsh", `autoload -U compinit; compinit -u; source <(kite completion zsh)`)
	r := kite(t, sharedDir(t, "busybox"), "completion", "tcsh")
	if r.Code != 125 || !strings.Contains(r.Stderr, "bash, zsh or fish") {
		t.Errorf("kite completion tcsh: %s", r)
	}
}
