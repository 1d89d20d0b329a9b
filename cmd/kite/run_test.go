package main

import (
	"reflect"
	"testing"
)

func TestSplitRunArgs(t *testing.T) {
	tests := []struct {
		in      []string
		image   string
		args    []string
		wantErr bool
	}{
		{[]string{"oci:x"}, "oci:x", nil, false},
		{[]string{"oci:x", "--"}, "oci:x", []string{}, false},
		{[]string{"oci:x", "--", "sh", "-c", "exit 7"}, "oci:x", []string{"sh", "-c", "exit 7"}, false},
		{[]string{"oci:x", "--", "--", "a"}, "oci:x", []string{"--", "a"}, false},
		{[]string{"oci:x", "sh"}, "", nil, true},
		{nil, "", nil, true},
	}
	for _, tt := range tests {
		image, args, err := splitRunArgs(tt.in)
		if (err != nil) != tt.wantErr || image != tt.image || !reflect.DeepEqual(args, tt.args) {
			t.Errorf("splitRunArgs(%q) = %q, %q, %v", tt.in, image, args, err)
		}
	}
}
