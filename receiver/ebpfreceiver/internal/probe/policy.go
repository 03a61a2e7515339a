package probe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The executable policy's bits (EXEC_POLICY_* in bpf/common.h): a path
// entry holds them for host tasks, and shifted by policyContainerShift for
// tasks under another root.
const (
	policyKill           uint8 = 1 << 0
	policyDeny           uint8 = 1 << 1
	policyContainerShift       = 4
)

// HostRoot is where the host's file system is seen from the agent: "" when
// the agent shares pid 1's mount namespace (or cannot tell), else pid 1's
// root (a DaemonSet with hostPID), so that a policy's path, or the host's
// bash, names the host's file.
func HostRoot() string {
	self, err1 := os.Readlink("/proc/self/ns/mnt")
	init, err2 := os.Readlink("/proc/1/ns/mnt")
	if err1 != nil || err2 != nil || self == init {
		return ""
	}
	return "/proc/1/root"
}

// policyTarget is one executable the policy names: its path key, and its file
// identity in the host's mount namespace when the file exists there.
type policyTarget struct {
	key    [ExecFilenameMax]byte
	id     processFileId
	exists bool
}

// resolvePolicyPath names path in the host's mount namespace: symlinks in it
// are followed (a policy naming /bin/nc means the file the kernel runs), and
// the file's identity is taken. A path with no file on the host is kept as a
// path only: a file created there later, or a container's file at that path
// (ContainerPaths), still matches. root is where the host's file system is seen
// ("" for the agent's own root, HostRoot otherwise).
func resolvePolicyPath(root, path string, self processFileId) (policyTarget, error) {
	var t policyTarget
	canonical := filepath.Clean(path)
	var st unix.Stat_t
	found := false
	if root == "" {
		if real, err := filepath.EvalSymlinks(canonical); err == nil && unix.Stat(real, &st) == nil {
			canonical, found = real, true
		}
	} else if real, ok := statInRoot(root, canonical, &st); ok {
		canonical, found = real, true
	}
	if found {
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return t, fmt.Errorf("%q is not a regular file", path)
		}
		t.id = fileIDOfStat(&st)
		t.exists = true
		if t.id == self {
			return t, fmt.Errorf("%q is this agent's own executable: enforcement never stops the agent", path)
		}
	}
	if len(canonical) >= ExecFilenameMax {
		return t, fmt.Errorf("%q resolves to %q, longer than %d bytes", path, canonical, ExecFilenameMax-1)
	}
	copy(t.key[:], canonical)
	return t, nil
}

// statInRoot resolves path as a process whose root is root would (its
// absolute symlinks too: openat2's RESOLVE_IN_ROOT; filepath.EvalSymlinks
// would read /proc/1/root's link text, "/", and go on in the agent's own
// root), stats the file, and returns its path below root.
func statInRoot(root, path string, st *unix.Stat_t) (string, bool) {
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", false
	}
	defer unix.Close(rootFD)
	fd, err := unix.Openat2(rootFD, path, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return "", false
	}
	defer unix.Close(fd)
	if unix.Fstat(fd, st) != nil {
		return "", false
	}
	// Both as the kernel names them from the agent (from the host's root when
	// root is out of the agent's reach): the file's path below root's.
	rootPath, err1 := os.Readlink("/proc/self/fd/" + strconv.Itoa(rootFD))
	filePath, err2 := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err1 != nil || err2 != nil {
		return "", false
	}
	rel, ok := cutRoot(rootPath, filePath)
	return rel, ok
}

// isOwnExecutable says whether path, in the agent's own root, is its executable.
func isOwnExecutable(path string, self processFileId) bool {
	id, err := statFileID(path)
	return err == nil && id == self
}

// cutRoot returns path below root ("" or "/" root: path itself).
func cutRoot(root, path string) (string, bool) {
	if root == "" || root == "/" {
		return path, true
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || (len(rel) > 2 && rel[:3] == "../") {
		return "", false
	}
	return "/" + rel, true
}

func statFileID(path string) (processFileId, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return processFileId{}, err
	}
	return fileIDOfStat(&st), nil
}

// policyIdentity is what the programs compare a task's root and an
// executable with: the host's root directory, and the agent's own executable.
type policyIdentity struct {
	hostRoot, self processFileId
}

// hostRootFn is HostRoot; tests point it at a root of their own.
var hostRootFn = HostRoot

func newPolicyIdentity() (policyIdentity, error) {
	var pi policyIdentity
	var err error
	root := "/proc/1/root"
	if r := hostRootFn(); r != "" {
		root = r
	}
	if pi.hostRoot, err = statFileID(root); err != nil {
		if pi.hostRoot, err = statFileID("/"); err != nil {
			return pi, fmt.Errorf("the host's root directory: %w", err)
		}
	}
	if pi.self, err = statFileID("/proc/self/exe"); err != nil {
		return pi, fmt.Errorf("the agent's own executable: %w", err)
	}
	return pi, nil
}

// setPolicyVariables gives an object the identities (objects that do not
// use them have no such variables).
func setPolicyVariables(spec *ebpf.CollectionSpec, pi policyIdentity) error {
	for name, v := range map[string]any{
		processVarCfgHostRootIno: pi.hostRoot.Ino, processVarCfgHostRootDev: pi.hostRoot.Dev,
		processVarCfgSelfExeIno: pi.self.Ino, processVarCfgSelfExeDev: pi.self.Dev,
	} {
		if sv := spec.Variables[name]; sv != nil {
			if err := sv.Set(v); err != nil {
				return fmt.Errorf("setting %s: %w", name, err)
			}
		}
	}
	return nil
}

// fillExecPolicy puts cfg's kill and deny paths into the shared policy maps:
// each by its canonical path (for host tasks, and for tasks under another
// root too with ContainerPaths) and by its file's identity when it exists on
// the host.
func (p *Probe) fillExecPolicy(cfg Config, pi policyIdentity) error {
	root := hostRootFn()
	pathBits := map[[ExecFilenameMax]byte]uint8{}
	fileBits := map[processFileId]uint8{}
	p.policyByPath, p.policyByFile = map[string]string{}, map[processFileId]string{}
	var errs []error
	add := func(list string, paths []string, bit uint8) {
		for _, path := range paths {
			t, err := resolvePolicyPath(root, path, pi.self)
			if err == nil && root != "" && cfg.ContainerPaths && isOwnExecutable(path, pi.self) {
				// The kernel would spare it anyway; say so rather than list it.
				err = fmt.Errorf("%q is this agent's own executable in its container, which container_paths would name: enforcement never stops the agent", path)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", list, err))
				continue
			}
			b := bit
			if cfg.ContainerPaths {
				b |= bit << policyContainerShift
			}
			pathBits[t.key] |= b
			p.policyByPath[string(trimNUL(t.key[:]))] = path
			if written := filepath.Clean(path); written != string(trimNUL(t.key[:])) { // the path as written, too (a symlink's own name)
				var k [ExecFilenameMax]byte
				copy(k[:], written)
				pathBits[k] |= b
				p.policyByPath[written] = path
			}
			if t.exists {
				fileBits[t.id] |= bit
				p.policyByFile[t.id] = path
			} else {
				p.PolicyPathsNotOnHost = append(p.PolicyPathsNotOnHost, path)
			}
		}
	}
	add("kill_paths", cfg.KillPaths, policyKill)
	add("deny_exec_paths", cfg.DenyExecPaths, policyDeny)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for k, v := range pathBits {
		if err := p.shared.policyPaths.Put(k, v); err != nil {
			return fmt.Errorf("adding %q to the executable policy: %w", trimNUL(k[:]), err)
		}
	}
	for k, v := range fileBits {
		if err := p.shared.policyFiles.Put(k, v); err != nil {
			return fmt.Errorf("adding inode %d to the executable policy: %w", k.Ino, err)
		}
	}
	return nil
}

// PolicyEntry returns the kill_paths or deny_exec_paths entry that an exec
// record flagged FlagKilledPath or FlagDenied matched: by its executable's
// inode (FlagByFile), else by its resolved path, else (a script) by the path
// execve received; "" when none is known.
func (p *Probe) PolicyEntry(ev *Event) string {
	if ev.Flags&FlagByFile != 0 {
		if e, ok := p.policyByFile[processFileId{Ino: ev.ExeInode, Dev: ev.ExeDevice}]; ok {
			return e
		}
	}
	if e, ok := p.policyByPath[string(ev.Exe)]; ok {
		return e
	}
	return p.policyByPath[string(ev.Filename)]
}
