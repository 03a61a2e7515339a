package probe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Limits of the uprobe object (bpf/events.h, bpf/uprobe.bpf.c).
const (
	// MaxUprobes is how many configured uprobes the object can tell apart.
	MaxUprobes = 64
	// MaxUprobeArgs is how many arguments a uprobe reads.
	MaxUprobeArgs = 4
	// UprobeStrMax is how many bytes of a string argument a record keeps, NUL included.
	UprobeStrMax = 128
	// ShellCommandMax is how many bytes of a command line a shell record keeps, NUL included.
	ShellCommandMax = 1024
	// MaxShellBinaries bounds how many distinct bash binaries are probed:
	// each costs a uprobe (kernel memory) and an ELF read at attach.
	MaxShellBinaries = 64
)

// readlineSymbol is the function an interactive bash reads each line with.
const readlineSymbol = "readline"

// UprobeArg is how a uprobe reads one argument.
type UprobeArg uint8

// Argument types.
const (
	UprobeArgInt    = UprobeArg(uprobeUprobeArgTypeUPROBE_ARG_INT)
	UprobeArgString = UprobeArg(uprobeUprobeArgTypeUPROBE_ARG_STRING) // NUL-terminated, in user memory
)

// Uprobe is a user-space probe to attach.
type Uprobe struct {
	// Binary is the absolute path of the executable or shared library
	// (ResolveBinary finds a library by name).
	Binary string
	// Symbol is the function, as the ELF symbol table names it.
	Symbol string
	// Return probes the function's return: Args then has at most one
	// entry, the return value's type.
	Return bool
	// Args are the first arguments' types (System V x86-64 ABI: rdi, rsi,
	// rdx, rcx), at most MaxUprobeArgs.
	Args []UprobeArg
}

func checkUprobes(ups []Uprobe) error {
	var errs []error
	if len(ups) > MaxUprobes {
		errs = append(errs, fmt.Errorf("uprobes: at most %d", MaxUprobes))
	}
	for i, u := range ups {
		switch {
		case !filepath.IsAbs(u.Binary):
			errs = append(errs, fmt.Errorf("uprobes[%d]: binary %q must be an absolute path", i, u.Binary))
		case u.Symbol == "":
			errs = append(errs, fmt.Errorf("uprobes[%d] (%s): symbol is empty", i, u.Binary))
		case len(u.Args) > MaxUprobeArgs:
			errs = append(errs, fmt.Errorf("uprobes[%d] (%s:%s): %d args, at most %d", i, u.Binary, u.Symbol, len(u.Args), MaxUprobeArgs))
		case u.Return && len(u.Args) > 1:
			errs = append(errs, fmt.Errorf("uprobes[%d] (%s:%s): a return probe reads one value, the return value", i, u.Binary, u.Symbol))
		}
		for j, a := range u.Args {
			if a != UprobeArgInt && a != UprobeArgString {
				errs = append(errs, fmt.Errorf("uprobes[%d] (%s:%s): arg %d has an unknown type %d", i, u.Binary, u.Symbol, j, a))
			}
		}
	}
	return errors.Join(errs...)
}

// binaryID is a file by device and inode: one bash binary, whatever its path.
type binaryID struct{ dev, ino uint64 }

// shellProbes are the bash binaries whose readline is probed.
type shellProbes struct {
	limit   int
	mu      sync.Mutex
	probed  map[binaryID]string // the path it was first found at
	refused map[binaryID]bool   // no readline symbol, or not attachable: not tried again
}

func (p *Probe) loadUprobe(cfg Config) error {
	if runtime.GOARCH != "amd64" {
		return fmt.Errorf("the uprobe programs read x86-64 registers; this is %s", runtime.GOARCH)
	}
	spec, err := loadUprobe()
	if err != nil {
		return fmt.Errorf("reading the embedded uprobe object: %w", err)
	}
	if err := p.prepareSpec(spec, cfg); err != nil {
		return err
	}
	if err := setCgroupAncestor(spec, cfg); err != nil {
		return err
	}
	objs := &uprobeObjects{}
	if err := spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: p.shared.replacements()}); err != nil {
		return explainLoadError("uprobe", err)
	}
	p.uprobe = objs
	p.shells = &shellProbes{limit: MaxShellBinaries, probed: map[binaryID]string{}, refused: map[binaryID]bool{}}
	if cfg.shellLimit > 0 {
		p.shells.limit = cfg.shellLimit
	}
	for i, u := range cfg.Uprobes {
		var c uprobeUprobeConfig
		for j, a := range u.Args {
			c.Types[j] = uint8(a)
		}
		if err := objs.UprobeConfigs.Put(uint32(i), &c); err != nil {
			return fmt.Errorf("uprobes[%d]: %w", i, err)
		}
		ex, err := link.OpenExecutable(u.Binary)
		if err != nil {
			return fmt.Errorf("uprobes[%d]: %s: %w", i, u.Binary, err)
		}
		attach, prog := ex.Uprobe, objs.HandleUprobe
		if u.Return {
			attach, prog = ex.Uretprobe, objs.HandleUretprobe
		}
		l, err := attach(u.Symbol, prog, &link.UprobeOptions{Cookie: uint64(i)})
		if err != nil {
			return fmt.Errorf("uprobes[%d]: attaching to %s in %s: %w", i, u.Symbol, u.Binary, explainErrno(err))
		}
		p.links["uprobe"] = append(p.links["uprobe"], l)
	}
	p.uprobes = cfg.Uprobes
	if cfg.ShellCommands {
		for _, b := range cfg.ShellBinaries {
			if _, err := p.AttachShell(b); err != nil && !errors.Is(err, os.ErrNotExist) {
				p.ShellErrors = append(p.ShellErrors, err)
			}
		}
	}
	return nil
}

// Uprobes are the configured uprobes, in the order their records' index names them.
func (p *Probe) Uprobes() []Uprobe { return p.uprobes }

// ShellBinaries returns the paths the probed bash binaries were found at.
func (p *Probe) ShellBinaries() []string {
	if p.shells == nil {
		return nil
	}
	p.shells.mu.Lock()
	defer p.shells.mu.Unlock()
	out := make([]string, 0, len(p.shells.probed))
	for _, path := range p.shells.probed {
		out = append(out, path)
	}
	return out
}

// ErrShellLimit is returned by AttachShell once MaxShellBinaries are probed.
var ErrShellLimit = fmt.Errorf("%d bash binaries are probed already: no more", MaxShellBinaries)

// AttachShell probes the readline of the bash binary at path, unless that
// binary (by device and inode) is probed already or was refused before. It
// reports whether it attached. Safe for concurrent use; a no-op when shell
// commands are off.
func (p *Probe) AttachShell(path string) (bool, error) {
	if p.shells == nil {
		return false, nil
	}
	// Opened once: the dedup key, the symbols read and the file the kernel
	// probes are one file, even if path names another one meanwhile
	// (/proc/<pid>/exe after another exec).
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, fmt.Errorf("%s is not a regular file", path)
	}
	id := binaryID{dev: st.Dev, ino: st.Ino}
	s := p.shells
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.probed[id]; ok || s.refused[id] {
		return false, nil
	}
	if len(s.probed) >= s.limit {
		return false, ErrShellLimit
	}
	fdPath := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	ex, err := link.OpenExecutable(fdPath)
	var l link.Link
	if err == nil {
		l, err = ex.Uretprobe(readlineSymbol, p.uprobe.HandleReadline, nil)
	}
	if err != nil {
		s.refused[id] = true
		return false, fmt.Errorf("probing readline in %s: %w (a bash stripped of its dynamic symbols, or built without readline, cannot be probed)", path, err)
	}
	// Under the lock, so that Close sees every link.
	p.linkMu.Lock()
	p.links["uprobe"] = append(p.links["uprobe"], l)
	p.linkMu.Unlock()
	s.probed[id] = path
	return true, nil
}

// AttachShellOf probes the bash a process runs: the file its exe link
// names (the container's own bash, whatever mount namespace it is in), or
// else filename under the process's root.
func (p *Probe) AttachShellOf(pid uint32, filename string) (bool, error) {
	proc := "/proc/" + strconv.FormatUint(uint64(pid), 10)
	ok, err := p.AttachShell(proc + "/exe")
	if errors.Is(err, os.ErrNotExist) && filepath.IsAbs(filename) {
		return p.AttachShell(proc + "/root" + filename)
	}
	return ok, err
}

// AttachRunningShells probes the bash binaries of the processes running
// now whose comm is bash (an exec seen later finds the others). It returns
// how many binaries it attached.
func (p *Probe) AttachRunningShells(procRoot string) int {
	if p.shells == nil {
		return 0
	}
	entries, _ := os.ReadDir(procRoot)
	n := 0
	for _, e := range entries {
		if _, err := strconv.ParseUint(e.Name(), 10, 32); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "comm"))
		if err != nil || string(comm) != "bash\n" {
			continue
		}
		if ok, _ := p.AttachShell(filepath.Join(procRoot, e.Name(), "exe")); ok {
			n++
		}
	}
	return n
}

// IsShell says whether an executable is a bash to probe: its base name is
// bash. Given the path the kernel resolved, that includes a bash run
// through a symlink of another name (/bin/sh -> bash).
func IsShell(exe string) bool {
	return exe == "bash" || strings.HasSuffix(exe, "/bash")
}
