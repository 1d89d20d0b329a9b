package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// The completion scripts ask kite itself what may come next (kite __complete WORDS... CURRENT),
// so they never go stale.
var completionScripts = map[string]string{
	"bash": `# kite completion for bash: source <(kite completion bash)
_kite() {
	local cur="${COMP_WORDS[COMP_CWORD]}"
	local words=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$(kite __complete "${words[@]}" "$cur" 2>/dev/null)" -- "$cur"))
}
complete -o default -F _kite kite
`,
	"zsh": `#compdef kite
# kite completion for zsh: source <(kite completion zsh)
_kite() {
	local -a candidates
	candidates=("${(@f)$(kite __complete ${words[2,CURRENT-1]} "${words[CURRENT]}" 2>/dev/null)}")
	_describe 'kite' candidates
}
compdef _kite kite
`,
	"fish": `# kite completion for fish: kite completion fish | source
complete -c kite -f -a '(kite __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
`,
}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script",
		ArgsUsage: "bash|zsh|fish",
		Description: `Prints a script that completes kite's commands and flags in the shell:

   source <(kite completion bash)      # in ~/.bashrc
   source <(kite completion zsh)       # in ~/.zshrc
   kite completion fish | source       # in ~/.config/fish/config.fish`,
		OnUsageError: usageError,
		Action: func(c *cli.Context) error {
			script, ok := completionScripts[c.Args().First()]
			if c.NArg() != 1 || !ok {
				return fmt.Errorf("completion: give one shell: bash, zsh or fish")
			}
			_, err := fmt.Print(script)
			return err
		},
	}
}

// completeCommand is what the completion scripts run: given the words typed so far, the last
// one being completed, it prints the commands or flags that may come next, one a line.
func completeCommand() *cli.Command {
	return &cli.Command{
		Name:            "__complete",
		Hidden:          true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			words := c.Args().Slice()
			if len(words) == 0 {
				words = []string{""}
			}
			current, typed := words[len(words)-1], words[:len(words)-1]
			commands, flags := c.App.Commands, c.App.Flags
			for _, w := range typed {
				for _, cmd := range commands {
					if cmd.HasName(w) {
						commands, flags = cmd.Subcommands, cmd.Flags
						break
					}
				}
			}
			if strings.HasPrefix(current, "-") {
				for _, f := range flags {
					for _, name := range f.Names() {
						if len(name) > 1 {
							fmt.Println("--" + name)
						}
					}
				}
				return nil
			}
			for _, cmd := range commands {
				if !cmd.Hidden {
					fmt.Println(cmd.Name)
				}
			}
			return nil
		},
	}
}
