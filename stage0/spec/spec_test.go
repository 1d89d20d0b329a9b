package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/pkg/poddir"
	"github.com/kite-runtime/kite/stage0/imageindex"
	"golang.org/x/sys/unix"
)

// layer writes files into a fresh directory standing for one stored layer.
func layer(t *testing.T, files map[string]string) imageindex.Layer {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return imageindex.Layer{Dir: dir}
}

const passwd = "root:x:0:0:root:/root:/bin/sh\nkiteuser:x:1000:1000:kite user:/home/kiteuser:/bin/sh\n"
const group = "root:x:0:\nkiteuser:x:1000:\nkitegroup:x:2000:kiteuser\n"

func TestArgs(t *testing.T) {
	img := imageindex.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"image", Options{}, []string{"/entry", "default"}},
		{"args replace cmd", Options{Args: []string{"a", "b"}}, []string{"/entry", "a", "b"}},
		{"empty args drop cmd", Options{Args: []string{}}, []string{"/entry"}},
		{"exec replaces entrypoint and cmd", Options{Exec: "/bin/id"}, []string{"/bin/id"}},
		{"exec with args", Options{Exec: "/bin/sh", Args: []string{"-c", "true"}}, []string{"/bin/sh", "-c", "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &imageindex.Record{Config: img, Layers: []imageindex.Layer{layer(t, nil)}}
			c, err := Generate(rec, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if s := c.Spec; !reflect.DeepEqual(s.Process.Args, tt.want) {
				t.Errorf("args = %q, want %q", s.Process.Args, tt.want)
			}
		})
	}
}

func TestNoCommand(t *testing.T) {
	rec := &imageindex.Record{Name: "x", Layers: []imageindex.Layer{layer(t, nil)}}
	if _, err := Generate(rec, Options{}); err == nil {
		t.Fatal("an image with no Entrypoint or Cmd and no args was accepted")
	}
}

func TestEnvironment(t *testing.T) {
	env := environment([]string{"FOO=bar"}, User{Home: "/home/u"}, "kite-1")
	want := []string{"FOO=bar", "PATH=" + poddir.DefaultPath, "HOME=/home/u", "HOSTNAME=kite-1", "container=kite"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("environment = %q, want %q", env, want)
	}
	env = environment([]string{"PATH=/bin", "HOME=/x"}, User{Home: "/home/u"}, "")
	if !slices.Contains(env, "PATH=/bin") || !slices.Contains(env, "HOME=/x") || len(env) != 3 {
		t.Errorf("the image's PATH and HOME must win: %q", env)
	}
}

func TestResolveUser(t *testing.T) {
	etc := layer(t, map[string]string{"etc/passwd": passwd, "etc/group": group})
	tests := []struct {
		spec string
		want User
	}{
		{"", User{UID: 0, GID: 0, Home: "/root"}},
		{"kiteuser", User{UID: 1000, GID: 1000, Groups: []uint32{2000}, Home: "/home/kiteuser"}},
		{"1000", User{UID: 1000, GID: 1000, Groups: []uint32{2000}, Home: "/home/kiteuser"}},
		{"kiteuser:kitegroup", User{UID: 1000, GID: 2000, Home: "/home/kiteuser"}},
		{"4242", User{UID: 4242, GID: 0, Home: "/"}},
		{"4242:4343", User{UID: 4242, GID: 4343, Home: "/"}},
	}
	for _, tt := range tests {
		got, err := ResolveUser(tt.spec, []imageindex.Layer{etc})
		if err != nil {
			t.Errorf("ResolveUser(%q): %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ResolveUser(%q) = %+v, want %+v", tt.spec, got, tt.want)
		}
	}
	if _, err := ResolveUser("nosuchuser", []imageindex.Layer{etc}); err == nil {
		t.Error("an unknown user name was accepted")
	}
}

func TestResolveUserLayering(t *testing.T) {
	lower := layer(t, map[string]string{"etc/passwd": passwd})
	upper := layer(t, map[string]string{"etc/passwd": "root:x:0:0:root:/newroot:/bin/sh\n"})
	got, err := ResolveUser("", []imageindex.Layer{upper, lower})
	if err != nil || got.Home != "/newroot" {
		t.Errorf("the top-most layer's passwd must win: %+v, %v", got, err)
	}
	// A whiteout (a 0/0 character device, which only a privileged process can create) hides the
	// lower copy; a FIFO stands in for it here as another non-regular file.
	wh := layer(t, nil)
	os.MkdirAll(filepath.Join(wh.Dir, "etc"), 0o755)
	if err := unix.Mkfifo(filepath.Join(wh.Dir, "etc/passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveUser("kiteuser", []imageindex.Layer{wh, lower}); err == nil {
		t.Error("a user from a passwd file hidden by a whiteout was found")
	}
}

func TestValidHostname(t *testing.T) {
	for h, ok := range map[string]bool{
		"kite-1234abcd": true, "a": true, "web.example": true, strings.Repeat("a", 64): true,
		"": false, strings.Repeat("a", 65): false, "-x": false, "x-": false, "a..b": false,
		"has space": false, "under_score": false, "ünïcode": false,
	} {
		if err := ValidHostname(h); (err == nil) != ok {
			t.Errorf("ValidHostname(%q) = %v, want ok=%v", h, err, ok)
		}
	}
}
