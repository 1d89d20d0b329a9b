package pods

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/kite-runtime/kite/stage0/datadir"
)

// ErrNotFound means no pod answers to a reference.
var ErrNotFound = errors.New("no such pod")

// Find finds the pod ref names: its UUID, its name, or a prefix of its UUID that no other pod
// shares, in that order.
func Find(d datadir.Dir, ref string) (*Pod, error) {
	if validUUID(ref) {
		p, err := Load(d, ref)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pod %s: %w", ref, ErrNotFound)
		}
		return p, err
	}
	if uuid := byName(d, ref); uuid != "" {
		if p, err := Load(d, uuid); err == nil && p.Name() == ref {
			return p, nil
		}
	}
	if ref == "" || strings.Trim(ref, "0123456789abcdef-") != "" {
		return nil, fmt.Errorf("pod %q: %w (give a UUID, a UUID prefix or a pod name; kite list shows them)", ref, ErrNotFound)
	}
	all, err := List(d)
	if err != nil {
		return nil, err
	}
	var matches []*Pod
	for _, p := range all {
		if strings.HasPrefix(p.UUID, ref) {
			matches = append(matches, p)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("pod %q: %w (kite list shows the pods)", ref, ErrNotFound)
	case 1:
		return matches[0], nil
	}
	var ids []string
	for _, p := range matches {
		ids = append(ids, p.UUID)
	}
	sort.Strings(ids)
	return nil, fmt.Errorf("pod %q: %d pods start with it (%s); give more of the UUID", ref, len(ids), strings.Join(ids, ", "))
}

// ReadUUIDFile reads a pod UUID from file, as kite run --uuid-file-save wrote it.
func ReadUUIDFile(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--uuid-file: %w", err)
	}
	uuid := strings.TrimSpace(string(b))
	if !validUUID(uuid) {
		return "", fmt.Errorf("--uuid-file %s: %q is not a pod UUID", file, uuid)
	}
	return uuid, nil
}
