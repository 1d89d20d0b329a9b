package main

import (
	"reflect"
	"testing"
)

func TestSplitApps(t *testing.T) {
	type app struct {
		image string
		args  []string
		user  string
	}
	tests := []struct {
		in      []string
		want    []app
		wantErr bool
	}{
		{[]string{"oci:x"}, []app{{"oci:x", nil, ""}}, false},
		{[]string{"oci:x", "--"}, []app{{"oci:x", []string{}, ""}}, false},
		{[]string{"oci:x", "--", "sh", "-c", "exit 7"}, []app{{"oci:x", []string{"sh", "-c", "exit 7"}, ""}}, false},
		{[]string{"oci:x", "--", "--", "a"}, []app{{"oci:x", []string{"--", "a"}, ""}}, false},
		{[]string{"oci:x", "--user", "7", "--", "id", "---", "oci:y", "-u", "8", "---", "oci:z"},
			[]app{{"oci:x", []string{"id"}, "7"}, {"oci:y", nil, "8"}, {"oci:z", nil, ""}}, false},
		{[]string{"oci:x", "sh"}, nil, true},
		{[]string{"oci:x", "--nosuchflag"}, nil, true},
		{[]string{"oci:x", "---"}, nil, true},
		{[]string{"---", "oci:x"}, nil, true},
		{nil, nil, true},
	}
	for _, tt := range tests {
		apps, err := splitApps(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("splitApps(%q): %v", tt.in, err)
			continue
		}
		var got []app
		for _, a := range apps {
			user := ""
			if a.flags != nil {
				user = a.flags.String("user")
			}
			got = append(got, app{a.image, a.args, user})
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitApps(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestAppNames(t *testing.T) {
	apps, err := splitApps([]string{"oci:a", "---", "oci:b", "--name", "web", "---", "oci:c"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := appNames(apps, []string{"busybox", "busybox", "busybox"})
	if err != nil || !reflect.DeepEqual(got, []string{"busybox", "web", "busybox-2"}) {
		t.Errorf("appNames = %q, %v", got, err)
	}
	apps, _ = splitApps([]string{"oci:a", "--name", "x", "---", "oci:b", "--name", "x"})
	if _, err := appNames(apps, []string{"a", "b"}); err == nil {
		t.Error("two apps named x were accepted")
	}
}
