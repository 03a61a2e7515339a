package ebpfreceiver

import (
	"bytes"
	"os"
	"strconv"
)

// runtimeParents are the container runtimes whose children are a container's
// entrypoint or a process exec'd into it: runc's init is reparented to the shim
// (a subreaper) or to conmon before it execs either.
var runtimeParents = map[string]bool{
	"containerd-shim": true, "containerd-shim-runc-v1": true, "containerd-shim-runc-v2": true,
	"runc": true, "crun": true, "conmon": true,
}

// nsPid is the pid of process tgid in its own (innermost) pid namespace, from
// /proc/<tgid>/status's NSpid line. Read only for a runtime's children, a few
// per container start or exec; false when the process has already gone.
func nsPid(tgid uint32) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tgid), 10) + "/status")
	if err != nil {
		return 0, false
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("NSpid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0, false
		}
		n, err := strconv.Atoi(string(f[len(f)-1]))
		return n, err == nil
	}
	return 0, false
}
