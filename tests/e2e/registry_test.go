package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kite-runtime/kite/tests/registry"
)

// regEnv is a registry the test started and the environment that makes kite use it: a
// registries.conf that marks it insecure (plain HTTP) and searches it for short names, and a
// configuration directory and credential files of the test's own, so that nothing of the test
// user's own configuration takes part.
type regEnv struct {
	reg  *registry.Registry
	opts *options
	// config is XDG_CONFIG_HOME: kite's policy and trusted keys live in config/kite.
	config string
}

func startRegistry(t *testing.T, ro registry.Options) *regEnv {
	t.Helper()
	reg, err := registry.Start(ro)
	if err != nil {
		t.Fatalf("start the test registry: %v", err)
	}
	t.Cleanup(func() { reg.Close() })
	home := newScratchDir(t, "registry-env-")
	conf := filepath.Join(home, "registries.conf")
	writeFile(t, conf, fmt.Sprintf("unqualified-search-registries = [%q]\n\n[[registry]]\nlocation = %q\ninsecure = true\n", reg.Addr(), reg.Addr()))
	e := &regEnv{reg: reg, config: filepath.Join(home, "config")}
	e.opts = &options{env: []string{
		"CONTAINERS_REGISTRIES_CONF=" + conf,
		"XDG_CONFIG_HOME=" + e.config,
		"REGISTRY_AUTH_FILE=" + filepath.Join(home, "auth.json"),
		"DOCKER_CONFIG=" + filepath.Join(home, "docker"),
	}}
	return e
}

// push pushes a test image to the registry as repoAndTag and returns its manifest digest.
func (e *regEnv) push(t *testing.T, layoutTag, repoAndTag string) string {
	t.Helper()
	d, err := e.reg.PushLayout(layoutDir, layoutTag, repoAndTag)
	if err != nil {
		t.Fatalf("push %s as %s: %v", layoutTag, repoAndTag, err)
	}
	return d
}

func (e *regEnv) ref(repo string) string { return "docker://" + e.reg.Addr() + "/" + repo }

func (e *regEnv) kite(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return kiteWith(t, dir, e.opts, args...)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

var imageIDLine = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

// wantID checks that a kite fetch printed one image ID and returns it.
func wantID(t *testing.T, r result, what string) string {
	t.Helper()
	wantCode(t, r, 0, what)
	if !imageIDLine.MatchString(r.Stdout) {
		t.Fatalf("%s printed %q, want one image ID", what, r.Stdout)
	}
	return strings.TrimSpace(r.Stdout)
}

// TestRegistryFetch fetches an image from a registry by tag and by digest, then runs it: the
// second fetch downloads no layer, and a run of the stored image contacts no registry.
func TestRegistryFetch(t *testing.T) {
	e := startRegistry(t, registry.Options{})
	digest := e.push(t, "busybox", "team/app:1.2")
	dir := newDataDir(t)

	id := wantID(t, e.kite(t, dir, "--insecure-options=image", "fetch", e.ref("team/app:1.2")), "fetch by tag")
	blobs := e.reg.BlobGETs()
	if blobs == 0 {
		t.Fatal("the fetch by tag downloaded no blob")
	}
	byDigest := wantID(t, e.kite(t, dir, "--insecure-options=image", "fetch", e.ref("team/app@"+digest)), "fetch by digest")
	if byDigest != id {
		t.Errorf("fetch by digest stored image %s, by tag %s; want the same image", byDigest, id)
	}
	if got := e.reg.BlobGETs(); got != blobs {
		t.Errorf("the fetch of a stored image downloaded %d more blobs", got-blobs)
	}

	requests := len(e.reg.Requests())
	r := e.kite(t, dir, "run", e.ref("team/app:1.2"), "--", "echo", "from the registry")
	wantCode(t, r, 0, "run the fetched image")
	if r.Stdout != "from the registry\n" {
		t.Errorf("app printed %q", r.Stdout)
	}
	if got := len(e.reg.Requests()); got != requests {
		t.Errorf("running a stored image made %d registry requests, want none (pull policy new)", got-requests)
	}

	// A short name resolves through registries.conf's unqualified-search-registries.
	short := wantID(t, e.kite(t, dir, "--insecure-options=image", "fetch", "team/app:1.2"), "fetch by short name")
	if short != id {
		t.Errorf("fetch by short name stored %s, want %s", short, id)
	}
	r = e.kite(t, dir, "run", "--pull-policy=never", "team/app:1.2", "--", "true")
	wantCode(t, r, 0, "run by short name, never pulling")
}

// TestPullPolicy moves a tag to another image and checks what each policy runs.
func TestPullPolicy(t *testing.T) {
	e := startRegistry(t, registry.Options{})
	e.push(t, "busybox", "team/app:1")
	dir := newDataDir(t)
	ref := e.ref("team/app:1")
	// /data exists in the multilayer image only.
	which := func(policy string) result {
		t.Helper()
		return e.kite(t, dir, "run", "--insecure-options=image", "--pull-policy="+policy, ref, "--", "sh", "-c", "test -d /data && echo multilayer || echo busybox")
	}

	r := which("never")
	wantCode(t, r, 125, "never, with nothing stored")
	if !strings.Contains(r.Stderr, "--pull-policy=never") || !strings.Contains(r.Stderr, "kite fetch") {
		t.Errorf("stderr does not explain the policy: %q", r.Stderr)
	}
	if r := which("new"); r.Code != 0 || r.Stdout != "busybox\n" {
		t.Fatalf("new, first run: %s", r)
	}
	e.push(t, "multilayer", "team/app:1")
	blobs := e.reg.BlobGETs()
	if r := which("new"); r.Code != 0 || r.Stdout != "busybox\n" {
		t.Errorf("new, after the tag moved: want the stored busybox, got %s", r)
	}
	if r := which("never"); r.Code != 0 || r.Stdout != "busybox\n" {
		t.Errorf("never, after the tag moved: want the stored busybox, got %s", r)
	}
	if got := e.reg.BlobGETs(); got != blobs {
		t.Errorf("new and never downloaded %d blobs", got-blobs)
	}
	if r := which("update"); r.Code != 0 || r.Stdout != "multilayer\n" {
		t.Errorf("update: want the new multilayer image, got %s", r)
	}
	if r := which("new"); r.Code != 0 || r.Stdout != "multilayer\n" {
		t.Errorf("new, after the update: want multilayer, got %s", r)
	}
	r = e.kite(t, dir, "run", "--pull-policy=sometimes", ref)
	wantCode(t, r, 125, "an unknown pull policy")
}

// TestRegistryAuth fetches from a registry that wants basic auth: refused without credentials,
// accepted with an auth file, and with the credentials kite login stores.
func TestRegistryAuth(t *testing.T) {
	e := startRegistry(t, registry.Options{Username: "kite", Password: "s3cret"})
	e.push(t, "busybox", "private/app:1")
	dir := newDataDir(t)
	ref := e.ref("private/app:1")

	before := listing(t, dir)
	r := e.kite(t, dir, "--insecure-options=image", "fetch", ref)
	wantCode(t, r, 125, "fetch without credentials")
	if !strings.Contains(r.Stderr, "kite login") {
		t.Errorf("stderr does not say how to log in: %q", r.Stderr)
	}
	compareListings(t, before, listing(t, dir))

	authFile := filepath.Join(newScratchDir(t, "auth-"), "auth.json")
	writeFile(t, authFile, fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, e.reg.Addr(), base64.StdEncoding.EncodeToString([]byte("kite:s3cret"))))
	wantID(t, e.kite(t, dir, "--insecure-options=image", "fetch", "--authfile", authFile, ref), "fetch with an auth file")

	// kite login checks the password with the registry before storing it.
	login := func(password string) result {
		t.Helper()
		stdin := filepath.Join(newScratchDir(t, "pw-"), "pw")
		writeFile(t, stdin, password+"\n")
		f, err := os.Open(stdin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		o := *e.opts
		o.stdin = f
		return kiteWith(t, dir, &o, "login", "--username", "kite", "--password-stdin", e.reg.Addr())
	}
	wantCode(t, login("wrong"), 125, "login with a wrong password")
	wantCode(t, login("s3cret"), 0, "login")
	dir2 := newDataDir(t)
	wantID(t, e.kite(t, dir2, "--insecure-options=image", "fetch", ref), "fetch after kite login")
	wantCode(t, e.kite(t, dir2, "logout", e.reg.Addr()), 0, "logout")
	r = e.kite(t, newDataDir(t), "--insecure-options=image", "fetch", ref)
	wantCode(t, r, 125, "fetch after kite logout")
}

// TestSignatures fetches registry images under kite's default policy: refused unsigned, accepted
// once the signer's key is trusted for the repository's prefix, refused when another key signed
// the image, and accepted without verification when the user says so.
func TestSignatures(t *testing.T) {
	e := startRegistry(t, registry.Options{})
	trusted, err := registry.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := registry.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(newScratchDir(t, "keys-"), "cosign.pub")
	writeFile(t, keyFile, string(trusted.PublicKeyPEM()))

	sign := func(repo, tag string, key *registry.SigningKey) {
		t.Helper()
		d := e.push(t, "busybox", repo+":"+tag)
		if key != nil {
			if err := e.reg.Sign(repo, d, e.reg.Addr()+"/"+repo+":"+tag, key); err != nil {
				t.Fatalf("sign %s: %v", repo, err)
			}
		}
	}
	sign("team/signed", "1", trusted)
	sign("team/foreign", "1", other)
	sign("team/unsigned", "1", nil)

	dir := newDataDir(t)
	refused := func(repo, mention string) {
		t.Helper()
		before := listing(t, dir)
		r := e.kite(t, dir, "fetch", e.ref(repo))
		wantCode(t, r, 125, "fetch "+repo)
		if !strings.Contains(r.Stderr, mention) {
			t.Errorf("fetch %s: stderr does not mention %q: %q", repo, mention, r.Stderr)
		}
		compareListings(t, before, listing(t, dir))
	}
	refused("team/signed:1", "kite trust --prefix "+e.reg.Addr()+"/team/signed")

	wantCode(t, e.kite(t, dir, "trust", "--prefix", e.reg.Addr()+"/team", keyFile), 0, "kite trust")
	r := e.kite(t, dir, "trust", "list", "--format", "json")
	if r.Code != 0 || !strings.Contains(r.Stdout, `"prefix":"`+e.reg.Addr()+`/team"`) {
		t.Errorf("trust list: %s", r)
	}
	wantID(t, e.kite(t, dir, "fetch", e.ref("team/signed:1")), "fetch a signed image")
	refused("team/foreign:1", "team/foreign:1 is refused")
	refused("team/unsigned:1", "team/unsigned:1 is refused")

	r = e.kite(t, dir, "--insecure-options=image", "fetch", e.ref("team/unsigned:1"))
	wantID(t, r, "fetch unsigned with --insecure-options=image")
	if !strings.Contains(r.Stderr, "not verified") {
		t.Errorf("an unverified fetch must say so on stderr: %q", r.Stderr)
	}

	wantCode(t, e.kite(t, dir, "trust", "rm", "--prefix", e.reg.Addr()+"/team"), 0, "trust rm")
	r = e.kite(t, newDataDir(t), "fetch", e.ref("team/signed:1"))
	wantCode(t, r, 125, "fetch a signed image after trust rm")
}

// TestRegistryHTTPNeedsInsecure checks that a plain-HTTP registry not marked insecure is refused
// with the fix in the message.
func TestRegistryHTTPNeedsInsecure(t *testing.T) {
	e := startRegistry(t, registry.Options{})
	e.push(t, "busybox", "team/app:1")
	empty := filepath.Join(newScratchDir(t, "noconf-"), "empty.conf")
	writeFile(t, empty, "")
	o := *e.opts
	o.env = append(append([]string{}, o.env...), "CONTAINERS_REGISTRIES_CONF="+empty)
	dir := newDataDir(t)
	r := kiteWith(t, dir, &o, "--insecure-options=image", "fetch", e.ref("team/app:1"))
	wantCode(t, r, 125, "fetch over plain HTTP without insecure")
	if !strings.Contains(r.Stderr, "--insecure-options=http") {
		t.Errorf("stderr does not name the fix: %q", r.Stderr)
	}
	wantID(t, kiteWith(t, dir, &o, "--insecure-options=image,http", "fetch", e.ref("team/app:1")), "fetch with --insecure-options=http")
}

// TestRegistryMirrorAndDockerConfig fetches through a registries.conf mirror (the primary
// location is a closed loopback port, so only the mirror can answer), with credentials from
// docker's config.json.
func TestRegistryMirrorAndDockerConfig(t *testing.T) {
	e := startRegistry(t, registry.Options{Username: "kite", Password: "s3cret"})
	e.push(t, "busybox", "team/app:1")
	home := newScratchDir(t, "mirror-")
	conf := filepath.Join(home, "registries.conf")
	writeFile(t, conf, fmt.Sprintf("[[registry]]\nlocation = \"127.0.0.1:1/team\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"%s/team\"\ninsecure = true\n", e.reg.Addr()))
	writeFile(t, filepath.Join(home, "docker", "config.json"),
		fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, e.reg.Addr(), base64.StdEncoding.EncodeToString([]byte("kite:s3cret"))))
	o := *e.opts
	o.env = append(append([]string{}, o.env...),
		"CONTAINERS_REGISTRIES_CONF="+conf, "DOCKER_CONFIG="+filepath.Join(home, "docker"), "REGISTRY_AUTH_FILE=")
	dir := newDataDir(t)
	wantID(t, kiteWith(t, dir, &o, "--insecure-options=image", "fetch", "docker://127.0.0.1:1/team/app:1"), "fetch through the mirror")
	r := kiteWith(t, dir, &o, "run", "docker://127.0.0.1:1/team/app:1", "--", "echo", "mirrored")
	if r.Code != 0 || r.Stdout != "mirrored\n" {
		t.Errorf("run the mirrored image: %s", r)
	}
}

// TestGPGSignatures trusts an OpenPGP key for a prefix and fetches images whose "simple signing"
// signatures lie in a lookaside directory that a registries.d file in kite's configuration names.
func TestGPGSignatures(t *testing.T) {
	e := startRegistry(t, registry.Options{})
	key, err := registry.NewGPGKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKeyArmored()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(newScratchDir(t, "gpg-"), "key.asc")
	writeFile(t, keyFile, string(pub))
	lookaside := newScratchDir(t, "lookaside-")
	signed := e.push(t, "busybox", "team/gpg:1")
	if err := key.SignToLookaside(lookaside, "team/gpg", signed, e.reg.Addr()+"/team/gpg:1"); err != nil {
		t.Fatal(err)
	}
	e.push(t, "busybox", "team/gpg-unsigned:1")
	writeFile(t, filepath.Join(e.config, "kite", "registries.d", "lookaside.yaml"),
		fmt.Sprintf("docker:\n  %s:\n    lookaside: file://%s\n", e.reg.Addr(), lookaside))

	dir := newDataDir(t)
	wantCode(t, e.kite(t, dir, "trust", "--prefix", e.reg.Addr()+"/team", keyFile), 0, "trust an OpenPGP key")
	r := e.kite(t, dir, "trust", "list", "--format", "json")
	if !strings.Contains(r.Stdout, `"type":"signedBy"`) {
		t.Errorf("trust list: %s", r)
	}
	wantID(t, e.kite(t, dir, "fetch", e.ref("team/gpg:1")), "fetch an image with an OpenPGP signature")
	r = e.kite(t, dir, "fetch", e.ref("team/gpg-unsigned:1"))
	wantCode(t, r, 125, "fetch an unsigned image under an OpenPGP key")
	if !strings.Contains(r.Stderr, "is refused") {
		t.Errorf("stderr: %q", r.Stderr)
	}
}

// TestExportToRegistry exports a stored image to a registry and fetches it from there into
// another store: the same image.
func TestExportToRegistry(t *testing.T) {
	e := startRegistry(t, registry.Options{})
	dir := newDataDir(t)
	id := wantID(t, e.kite(t, dir, "fetch", layoutRef("multilayer")), "fetch the layout image")
	wantCode(t, e.kite(t, dir, "--insecure-options=http", "image", "export", id[:12], e.ref("team/exported:1")), 0, "export to the registry")
	got := wantID(t, e.kite(t, newDataDir(t), "--insecure-options=image", "fetch", e.ref("team/exported:1")), "fetch the exported image")
	if got != id {
		t.Errorf("the exported image came back as %s, want %s", got, id)
	}
}
