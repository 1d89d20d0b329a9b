package idmap

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Default returns the mappings of a user namespace that kite makes for the caller: 0 is the
// caller, and 1 to N its subordinate ranges from /etc/subuid and /etc/subgid, when it has both
// and the uidmap helpers that write them are installed. Otherwise only the caller is mapped, and
// ranges is false.
func Default() (uids, gids []specs.LinuxIDMapping, ranges bool) {
	uid, gid := os.Getuid(), os.Getgid()
	uids = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(uid), Size: 1}}
	gids = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(gid), Size: 1}}
	if uid == 0 {
		return rootMappings("/proc/self/uid_map"), rootMappings("/proc/self/gid_map"), true
	}
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	subU := subordinate("/etc/subuid", name, uid)
	subG := subordinate("/etc/subgid", name, uid)
	if len(subU) == 0 || len(subG) == 0 {
		return uids, gids, false
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			return uids, gids, false
		}
	}
	return Follow(uids, subU), Follow(gids, subG), true
}

// rootMappings maps root's ids to themselves. On the host, that is 0 to 65535. In a user
// namespace of its own (podman's, which runs its runtime as root there), it is every id that
// namespace has, extent by extent of its map file: the kernel takes each extent of a new map from
// one extent of its parent's.
func rootMappings(file string) []specs.LinuxIDMapping {
	host := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0, Size: 65536}}
	parent, err := Read(file)
	if err != nil || len(parent) == 0 || (len(parent) == 1 && parent[0].HostID == 0 && parent[0].ContainerID == 0 && parent[0].Size == 1<<32-1) {
		return host
	}
	var m []specs.LinuxIDMapping
	for _, e := range parent {
		m = append(m, specs.LinuxIDMapping{ContainerID: e.ContainerID, HostID: e.ContainerID, Size: e.Size})
	}
	return m
}

// subordinate reads the ranges of the user called name (or numbered uid) from file, in the
// "owner:first:count" lines of subuid(5).
func subordinate(file, name string, uid int) []specs.LinuxIDMapping {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseSubordinate(f, name, uid)
}

func parseSubordinate(r io.Reader, name string, uid int) []specs.LinuxIDMapping {
	var ranges []specs.LinuxIDMapping
	s := bufio.NewScanner(r)
	for s.Scan() {
		fields := strings.Split(strings.TrimSpace(s.Text()), ":")
		if len(fields) != 3 || (fields[0] != name && fields[0] != strconv.Itoa(uid)) {
			continue
		}
		first, err1 := strconv.ParseUint(fields[1], 10, 32)
		count, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 || first+count > 1<<32-1 {
			continue
		}
		ranges = append(ranges, specs.LinuxIDMapping{HostID: uint32(first), Size: uint32(count)})
	}
	return ranges
}

// Follow appends ranges to m, their ids in the namespace following each other from m's end.
func Follow(m, ranges []specs.LinuxIDMapping) []specs.LinuxIDMapping {
	next := uint64(m[len(m)-1].ContainerID) + uint64(m[len(m)-1].Size)
	for _, r := range ranges {
		if next+uint64(r.Size) > 1<<32-1 {
			break
		}
		m = append(m, specs.LinuxIDMapping{ContainerID: uint32(next), HostID: r.HostID, Size: r.Size})
		next += uint64(r.Size)
	}
	return m
}
