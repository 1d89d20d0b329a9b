package rootfs

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want mountOptions
	}{
		{"empty", nil, mountOptions{}},
		{"proc", []string{"nosuid", "noexec", "nodev"}, mountOptions{
			flags:   unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV,
			attrSet: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODEV,
		}},
		{"tmpfs data", []string{"nosuid", "mode=755", "size=65536k"}, mountOptions{
			flags: unix.MS_NOSUID, attrSet: unix.MOUNT_ATTR_NOSUID, data: []string{"mode=755", "size=65536k"},
		}},
		{"rbind ro", []string{"rbind", "ro"}, mountOptions{
			bind: true, recursive: true, flags: unix.MS_RDONLY, attrSet: unix.MOUNT_ATTR_RDONLY,
		}},
		{"ro then rw", []string{"bind", "ro", "rw"}, mountOptions{
			bind: true, attrClr: unix.MOUNT_ATTR_RDONLY,
		}},
		{"rro", []string{"bind", "rro"}, mountOptions{
			bind: true, recursive: true, flags: unix.MS_RDONLY, attrSet: unix.MOUNT_ATTR_RDONLY,
		}},
		{"atime", []string{"noatime"}, mountOptions{
			flags: unix.MS_NOATIME, attrSet: unix.MOUNT_ATTR_NOATIME, attrClr: unix.MOUNT_ATTR__ATIME, atime: true,
		}},
		{"relatime clears the atime field", []string{"relatime"}, mountOptions{
			flags: unix.MS_RELATIME, attrClr: unix.MOUNT_ATTR__ATIME, atime: true,
		}},
		{"propagation", []string{"rslave"}, mountOptions{propagation: unix.MS_SLAVE | unix.MS_REC}},
		{"devpts", []string{"newinstance", "ptmxmode=0666"}, mountOptions{data: []string{"newinstance", "ptmxmode=0666"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseOptions(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseOptions(%q) =\n %+v, want\n %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDataString(t *testing.T) {
	if got := parseOptions([]string{"mode=1777", "nosuid", "size=1k"}).dataString(); got != "mode=1777,size=1k" {
		t.Errorf("dataString = %q", got)
	}
}
