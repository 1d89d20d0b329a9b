// Package ocischema checks documents against the JSON schema of the OCI runtime-spec, for tests
// only. The schema is the one in the module cache, of the runtime-spec version go.mod requires
// (the version whose Go types kite encodes config.json with); its files refer to each other by
// relative paths and are loaded from that directory, never from the network.
package ocischema

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Module is the module whose schema/ directory holds the schema.
const Module = "github.com/opencontainers/runtime-spec"

// Schema is a compiled schema.
type Schema struct {
	// Dir is the schema directory it was compiled from.
	Dir    string
	schema *jsonschema.Schema
}

var config struct {
	once   sync.Once
	schema *Schema
	err    error
}

// Config returns the compiled config-schema.json, the schema of config.json, failing t when it
// cannot be found or compiled. It is compiled once per test binary.
func Config(t testing.TB) *Schema {
	t.Helper()
	config.once.Do(func() {
		dir, err := SchemaDir()
		if err == nil {
			config.schema, err = Compile(dir, "config-schema.json")
		}
		config.err = err
	})
	if config.err != nil {
		t.Fatalf("OCI runtime-spec schema: %v", config.err)
	}
	return config.schema
}

// SchemaDir finds the schema/ directory of Module in the module cache, as go.mod selects it.
// The module is always there: the packages under test are built with its Go types.
func SchemaDir() (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("find the go command, which locates the module cache: %w", err)
	}
	cmd := exec.Command(goCmd, "list", "-m", "-f", "{{.Dir}}", Module)
	// Only what is in the module cache already: no proxy, no toolchain download.
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w: %s", Module, err, strings.TrimSpace(stderr.String()))
	}
	modDir := strings.TrimSpace(string(out))
	if modDir == "" {
		return "", fmt.Errorf("go list -m %s: the module is not in the module cache (go mod download %s)", Module, Module)
	}
	dir := filepath.Join(modDir, "schema")
	if _, err := os.Stat(filepath.Join(dir, "config-schema.json")); err != nil {
		return "", fmt.Errorf("the runtime-spec module has no schema: %w", err)
	}
	return dir, nil
}

// Compile compiles the schema file name of dir. Its references to other files of dir load from
// dir; the compiler has no loader for any scheme but file, so nothing is fetched.
func Compile(dir, name string) (*Schema, error) {
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{"file": repairingLoader{}})
	// The runtime-spec schema says draft-04 in its $schema; the same for a file that would not.
	c.DefaultDraft(jsonschema.Draft4)
	s, err := c.Compile(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", filepath.Join(dir, name), err)
	}
	return &Schema{Dir: dir, schema: s}, nil
}

// repairingLoader loads schema files as FileLoader does, and repairs references written
// "#definitions/NAME": runtime-spec v1.3.0's defs.json has one (ArrayOfUint32's items), which a
// draft-04 validator reads as a named anchor that does not exist, failing the whole schema. It
// means the JSON pointer "#/definitions/NAME", as the schema's other references do.
type repairingLoader struct{}

func (repairingLoader) Load(url string) (any, error) {
	doc, err := jsonschema.FileLoader{}.Load(url)
	if err != nil {
		return nil, err
	}
	repairRefs(doc)
	return doc, nil
}

func repairRefs(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if ref, ok := e.(string); ok && k == "$ref" {
				if name, ok := strings.CutPrefix(ref, "#definitions/"); ok {
					v[k] = "#/definitions/" + name
				}
				continue
			}
			repairRefs(e)
		}
	case []any:
		for _, e := range v {
			repairRefs(e)
		}
	}
}

// Validate checks the JSON document doc. The error lists every violation, each with the JSON
// pointer of the value at fault and what the schema wants there.
func (s *Schema) Validate(doc []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.schema.Validate(v)
}
