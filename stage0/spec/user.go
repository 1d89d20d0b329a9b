package spec

import (
	"fmt"
	"io"

	"github.com/kite-runtime/kite/stage0/imageindex"
	"github.com/kite-runtime/kite/stage0/rootview"
	"github.com/moby/sys/user"
)

// maxID is the largest uid or gid kite gives an app: ids are 32-bit, and those from 2^31 up are
// read as negative by too much software (and 2^32-1 is the kernel's "no id").
const maxID = 1<<31 - 1

// User is the app's resolved identity.
type User struct {
	UID, GID uint32
	Groups   []uint32
	Home     string
}

// ResolveUser turns an image's or the user's "user[:group]" (names or numbers) into ids, reading
// /etc/passwd and /etc/group from the image's layers. Named users get their supplementary groups.
func ResolveUser(spec string, layers []imageindex.Layer) (User, error) {
	passwd, closePasswd := openInLayers(layers, "etc/passwd")
	defer closePasswd()
	group, closeGroup := openInLayers(layers, "etc/group")
	defer closeGroup()
	defaults := &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}
	eu, err := user.GetExecUser(spec, defaults, passwd, group)
	if err != nil {
		return User{}, fmt.Errorf("resolve user %q in the image's /etc/passwd and /etc/group: %w", spec, err)
	}
	// The image's files are not range-checked by the parser: an id of -1 would wrap to
	// 4294967295, which setresuid(2) reads as "leave unchanged".
	for _, id := range append([]int{eu.Uid, eu.Gid}, eu.Sgids...) {
		if id < 0 || id > maxID {
			return User{}, fmt.Errorf("resolve user %q: the image's /etc/passwd or /etc/group gives it the id %d, outside 0 to %d: fix the image, or give --user numeric ids it has no entry for", spec, id, maxID)
		}
	}
	u := User{UID: uint32(eu.Uid), GID: uint32(eu.Gid), Home: eu.Home}
	for _, g := range eu.Sgids {
		if uint32(g) != u.GID {
			u.Groups = append(u.Groups, uint32(g))
		}
	}
	if u.Home == "" {
		u.Home = "/"
	}
	return u, nil
}

// openInLayers opens name in the root filesystem the layers (top-most first) make. It returns a
// nil reader when the image has no such file, which user.GetExecUser treats as an empty database.
func openInLayers(layers []imageindex.Layer, name string) (io.Reader, func()) {
	view := make(rootview.View, len(layers))
	for i, l := range layers {
		view[i] = l.Dir
	}
	f, err := view.Open(name)
	if err != nil {
		return nil, func() {}
	}
	return f, func() { f.Close() }
}
