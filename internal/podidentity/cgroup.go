package podidentity

import (
	"github.com/otelcol-k8ssec/otelcol-k8ssec/internal/mountinfo"

	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// FindCgroup2Mount returns the mount point of the cgroup v2 hierarchy from
// path, a mountinfo file (e.g. /proc/self/mountinfo), and the mount's root inside the
// hierarchy ("/" unless the agent runs in a cgroup namespace). /sys/fs/cgroup is
// preferred, then /sys/fs/cgroup/unified (hybrid v1/v2 hosts), then the first.
func FindCgroup2Mount(path string) (mountPoint, root string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("podidentity: reading %s: %w", path, err)
	}
	best := -1
	for line := range strings.SplitSeq(string(data), "\n") {
		// id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		f := strings.Fields(pre)
		if len(f) < 5 {
			continue
		}
		mp, r := mountinfo.Unescape(f[4]), mountinfo.Unescape(f[3])
		rank := 2
		switch mp {
		case "/sys/fs/cgroup":
			rank = 0
		case "/sys/fs/cgroup/unified":
			rank = 1
		}
		if best < 0 || rank < best {
			best, mountPoint, root = rank, mp, r
		}
	}
	if best < 0 {
		return "", "", errors.New("podidentity: no cgroup2 mount in " + path +
			"; pod identity needs cgroup v2 (mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified`)")
	}
	return mountPoint, root, nil
}

// walkCgroups maps the inode number of every directory below mount (the
// cgroup v2 id, on 64-bit kernels) to its path relative to the hierarchy root:
// prefix (the mount's root, "/" normally) joined with the path below mount.
func walkCgroups(mount, prefix string, visit func(id uint64, path string)) error {
	var st syscall.Stat_t
	if err := syscall.Stat(mount, &st); err != nil {
		return fmt.Errorf("podidentity: %w", err)
	}
	visit(st.Ino, prefix)
	return walkDir(mount, prefix, visit)
}

func walkDir(dir, rel string, visit func(uint64, string)) error {
	f, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed while walking
		}
		return err
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil && len(entries) == 0 {
		return nil
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		child := filepath.Join(dir, e.Name())
		var st syscall.Stat_t
		if syscall.Lstat(child, &st) != nil {
			continue // removed while walking
		}
		childRel := rel + "/" + e.Name()
		if rel == "/" {
			childRel = "/" + e.Name()
		}
		visit(st.Ino, childRel)
		if err := walkDir(child, childRel, visit); err != nil {
			return err
		}
	}
	return nil
}

// CgroupID returns the cgroup v2 id of the cgroup directory dir: its inode
// number, which is what bpf_get_current_cgroup_id() reports on 64-bit kernels.
func CgroupID(dir string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("podidentity: %w", err)
	}
	return st.Ino, nil
}

// ProcCgroups reads procRoot/PID/cgroup and returns the v2 path ("" when
// there is no 0:: line) and the v1 paths, keyed by controller list.
func ProcCgroups(procRoot string, pid int) (v2 string, v1 map[string]string, err error) {
	data, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", nil, fmt.Errorf("podidentity: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		ctrl, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if id == "0" && ctrl == "" {
			v2 = path
			continue
		}
		if v1 == nil {
			v1 = map[string]string{}
		}
		v1[ctrl] = path
	}
	return v2, v1, nil
}

// InfoFromPID reads a process's cgroup membership from procRoot/PID/cgroup
// and parses it: the v2 line first, then the v1 lines (name=systemd, then
// the others), the first naming a container or pod winning. Host when none do.
// It is the fallback for tasks whose cgroup id does not resolve (v1-only
// hosts, or a process that left its container's cgroup).
func InfoFromPID(procRoot string, pid int) (PathInfo, string, error) {
	v2, v1, err := ProcCgroups(procRoot, pid)
	if err != nil {
		return PathInfo{}, "", err
	}
	if info := ParsePath(v2); !info.Host {
		return info, v2, nil
	}
	if p, ok := v1["name=systemd"]; ok {
		if info := ParsePath(p); !info.Host {
			return info, p, nil
		}
	}
	for _, p := range v1 {
		if info := ParsePath(p); !info.Host {
			return info, p, nil
		}
	}
	return PathInfo{Host: true}, v2, nil
}
