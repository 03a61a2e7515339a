package probe

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// FilePathMax is how many bytes of a path a file record keeps, NUL
// included, and the longest prefix file_prefixes can hold.
const FilePathMax = 256

// pathKey is the file_prefixes LPM key (struct path_key in file.bpf.c).
type pathKey struct {
	Prefixlen uint32
	Data      [FilePathMax]byte
}

// prefixKeys returns the two LPM entries of a prefix: "<dir>/" for what is
// below it and "<dir>\x00" for the directory itself, so that /etc matches
// /etc and /etc/passwd but not /etcd. "/" is one entry matching every
// absolute path.
func prefixKeys(prefix string) ([]pathKey, error) {
	if !strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("file prefix %q: must be an absolute path (relative paths are not resolved in the kernel)", prefix)
	}
	p := path.Clean(prefix)
	if p == "/" {
		k := pathKey{Prefixlen: 8}
		k.Data[0] = '/'
		return []pathKey{k}, nil
	}
	if len(p)+1 > FilePathMax {
		return nil, fmt.Errorf("file prefix %q: longer than %d bytes", prefix, FilePathMax-1)
	}
	var below, self pathKey
	below.Prefixlen = uint32(len(p)+1) * 8
	copy(below.Data[:], p+"/")
	self.Prefixlen = below.Prefixlen
	copy(self.Data[:], p) // NUL-terminated by the zero value
	return []pathKey{below, self}, nil
}

// IsFileKind reports whether k is a file.* event.
func IsFileKind(k Kind) bool {
	return k >= KindFileOpen && k <= KindFileChown || k == KindFileLink || k == KindFileSymlink
}

func checkFileConfig(cfg Config) error {
	var errs []error
	for _, k := range cfg.FileKinds {
		if !IsFileKind(k) {
			errs = append(errs, fmt.Errorf("file kinds: %v is not a file event", k))
		}
	}
	for _, p := range cfg.FilePrefixes {
		if _, err := prefixKeys(p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(cfg.FileKinds) > 0 && len(cfg.FilePrefixes) == 0 {
		errs = append(errs, errors.New("file events need at least one file prefix"))
	}
	return errors.Join(errs...)
}

// requireTracefs fails with how to mount tracefs when it is not mounted:
// syscalls tracepoints are attached through it.
func requireTracefs() error { return requireTracefsAt(tracefsDirs...) }

// tracefsDirs are where tracefs is mounted, newest convention first.
var tracefsDirs = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

func requireTracefsAt(dirs ...string) error {
	var st unix.Statfs_t
	for _, dir := range dirs {
		if unix.Statfs(dir, &st) == nil && st.Type == unix.TRACEFS_MAGIC {
			return nil
		}
	}
	return errors.New("tracefs is not mounted: syscalls tracepoints need it; run `mount -t tracefs nodev /sys/kernel/tracing` (in Kubernetes, mount the host's /sys/kernel/tracing into the pod)")
}

// fillFileFilters puts cfg's prefixes into a file_prefixes map and the inodes
// of those that name regular files into a file_inodes map (the file object's,
// and the hook object's copies of them).
func fillFileFilters(cfg Config, prefixes, inodes *ebpf.Map) error {
	for _, pr := range cfg.FilePrefixes {
		keys, _ := prefixKeys(pr) // checked by checkConfig
		for _, k := range keys {
			if err := prefixes.Put(&k, uint8(1)); err != nil {
				return fmt.Errorf("adding %q to the file prefixes: %w", pr, err)
			}
		}
		// A prefix naming a regular file is also watched by inode, so that
		// opening it through a hard link is reported. Prefixes that do not
		// exist yet or are directories are watched by path only.
		if id, err := FileIDOf(path.Clean(pr)); err == nil {
			if err := inodes.Put(&id, uint8(1)); err != nil {
				return fmt.Errorf("adding the inode of %q to the watched files: %w", pr, err)
			}
		}
	}
	return nil
}

func (p *Probe) loadFile(cfg Config) error {
	if err := requireTracefs(); err != nil {
		return err
	}
	spec, err := loadFile()
	if err != nil {
		return fmt.Errorf("reading the embedded file object: %w", err)
	}
	if err := p.prepareSpec(spec, cfg); err != nil {
		return err
	}
	objs := &fileObjects{}
	if err := spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: p.shared.replacements()}); err != nil {
		return explainLoadError("file", err)
	}
	p.file = objs
	if err := fillFileFilters(cfg, objs.FilePrefixes, objs.FileInodes); err != nil {
		return err
	}
	var opens, progs []syscallProg
	for _, k := range cfg.FileKinds {
		switch k {
		case KindFileOpen:
			opens = append(opens, syscallProg{"open", objs.HandleOpen}, syscallProg{"openat", objs.HandleOpenat},
				syscallProg{"openat2", objs.HandleOpenat2}, syscallProg{"creat", objs.HandleCreat})
		case KindFileUnlink:
			progs = append(progs, syscallProg{"unlink", objs.HandleUnlink}, syscallProg{"unlinkat", objs.HandleUnlinkat})
		case KindFileRename:
			progs = append(progs, syscallProg{"rename", objs.HandleRename}, syscallProg{"renameat", objs.HandleRenameat}, syscallProg{"renameat2", objs.HandleRenameat2})
		case KindFileChmod:
			progs = append(progs, syscallProg{"chmod", objs.HandleChmod}, syscallProg{"fchmodat", objs.HandleFchmodat}, syscallProg{"fchmodat2", objs.HandleFchmodat2})
		case KindFileChown:
			progs = append(progs, syscallProg{"chown", objs.HandleChown}, syscallProg{"lchown", objs.HandleLchown}, syscallProg{"fchownat", objs.HandleFchownat})
		case KindFileLink:
			progs = append(progs, syscallProg{"link", objs.HandleLink}, syscallProg{"linkat", objs.HandleLinkat})
		case KindFileSymlink:
			progs = append(progs, syscallProg{"symlink", objs.HandleSymlink}, syscallProg{"symlinkat", objs.HandleSymlinkat})
		}
	}
	// Opens are judged at sys_exit on the file opened; the others at sys_enter.
	if err := p.attachSyscalls("file", opens, objs.HandleOpenExit); err != nil {
		return err
	}
	return p.attachSyscalls("file", progs, objs.HandleFileExit)
}
