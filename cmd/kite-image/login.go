package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/pkg/docker/config"
	"go.podman.io/image/v5/types"
	"golang.org/x/term"
)

// loginAction stores or removes registry credentials in the containers auth file that podman
// and kite fetch read:
//
//	login [--authfile F] [--username U] [--password-stdin] REGISTRY
//	logout [--authfile F] (REGISTRY | --all)
//
// login checks the credentials with the registry before storing them. It prompts only when stdin
// is a terminal.
type loginAction struct {
	logout        bool
	registry      string
	authFile      string
	username      string
	passwordStdin bool
	all           bool
}

func (a *loginAction) flags(fs *flag.FlagSet) {
	fs.StringVar(&a.authFile, "authfile", os.Getenv("REGISTRY_AUTH_FILE"), "credentials file")
	if a.logout {
		fs.BoolVar(&a.all, "all", false, "every registry")
		return
	}
	fs.StringVar(&a.username, "username", "", "user name")
	fs.BoolVar(&a.passwordStdin, "password-stdin", false, "read the password from stdin")
}

func (a *loginAction) parse(args []string) error {
	switch {
	case a.all && len(args) == 0:
		return nil
	case !a.all && len(args) == 1:
		a.registry = strings.TrimPrefix(args[0], "docker://")
		return nil
	case a.logout:
		return usageError(errors.New("logout: give one REGISTRY, or --all"))
	}
	return usageError(errors.New("login: give one REGISTRY"))
}

// needsStore is false: credentials are not in the store.
func (a *loginAction) needsStore() bool { return false }

func (a *loginAction) run(ctx context.Context, g *globals) error {
	sys := &types.SystemContext{AuthFilePath: a.authFile}
	if g.insecure.Registries {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	if a.logout {
		if a.all {
			return config.RemoveAllAuthentication(sys)
		}
		if err := config.RemoveAuthentication(sys, a.registry); err != nil {
			return fmt.Errorf("log out of %s: %w", a.registry, err)
		}
		return nil
	}
	user, pass, err := a.credentials()
	if err != nil {
		return err
	}
	if err := docker.CheckAuth(ctx, sys, user, pass, a.registry); err != nil {
		return fmt.Errorf("log in to %s: %w", a.registry, err)
	}
	where, err := config.SetCredentials(sys, a.registry, user, pass)
	if err != nil {
		return fmt.Errorf("store the credentials for %s: %w", a.registry, err)
	}
	fmt.Fprintf(os.Stderr, "kite: logged in to %s (credentials in %s)\n", a.registry, where)
	return nil
}

// credentials come from the flags and stdin, or from prompts on a terminal; a script never gets
// a prompt.
func (a *loginAction) credentials() (user, pass string, err error) {
	interactive := term.IsTerminal(int(os.Stdin.Fd()))
	user = a.username
	if user == "" {
		if !interactive || a.passwordStdin {
			return "", "", errors.New("login: give --username (and --password-stdin) when stdin is not a terminal")
		}
		fmt.Fprint(os.Stderr, "Username: ")
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return "", "", fmt.Errorf("read the user name: %w", err)
		}
		user = strings.TrimSpace(line)
	}
	switch {
	case a.passwordStdin:
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return "", "", fmt.Errorf("read the password from stdin: %w", err)
		}
		pass = strings.TrimRight(string(data), "\r\n")
	case interactive:
		fmt.Fprint(os.Stderr, "Password: ")
		data, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", "", fmt.Errorf("read the password: %w", err)
		}
		pass = string(data)
	default:
		return "", "", errors.New("login: give --password-stdin when stdin is not a terminal")
	}
	if user == "" || pass == "" {
		return "", "", errors.New("login: the user name and the password must not be empty")
	}
	return user, pass, nil
}
