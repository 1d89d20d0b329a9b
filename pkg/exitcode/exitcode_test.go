package exitcode

import (
	"syscall"
	"testing"
)

func TestFromWaitStatus(t *testing.T) {
	tests := []struct {
		ws   syscall.WaitStatus
		want int
	}{
		{0, 0},
		{7 << 8, 7},
		{255 << 8, 255},
		{syscall.WaitStatus(syscall.SIGKILL), 137},
		{syscall.WaitStatus(syscall.SIGTERM), 143},
		{syscall.WaitStatus(syscall.SIGSEGV) | 0x80, 139}, // core dumped
	}
	for _, tt := range tests {
		if got := FromWaitStatus(tt.ws); got != tt.want {
			t.Errorf("FromWaitStatus(%#x) = %d, want %d", uint32(tt.ws), got, tt.want)
		}
	}
}
