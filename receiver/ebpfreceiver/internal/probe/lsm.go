package probe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// lsmList is where the kernel lists its active LSMs (securityfs).
const lsmList = "/sys/kernel/security/lsm"

// FlagDenied marks an exec that BPF LSM refused (EXEC_FLAG_DENIED).
const FlagDenied uint32 = 1 << 7

// loadLSM loads bpf/lsm.bpf.c, which denies the executables of
// cfg.DenyExecPaths through the shared executable policy. That is filled
// before the program is attached: no exec slips through a half-filled map.
func (p *Probe) loadLSM(cfg Config) error {
	spec, err := loadLsm()
	if err != nil {
		return fmt.Errorf("reading the embedded BPF object: %w", err)
	}
	if err := p.prepareSpec(spec, cfg); err != nil {
		return err
	}
	objs := &lsmObjects{}
	if err := spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: p.shared.replacements()}); err != nil {
		return explainLSMError(err)
	}
	p.lsm = objs // the denied executables are in the shared policy maps, filled by Load
	l, err := link.AttachLSM(link.LSMOptions{Program: objs.DenyExecCheck})
	if err != nil {
		return explainLSMError(fmt.Errorf("attaching lsm/bprm_check_security: %w", err))
	}
	p.links["lsm"] = append(p.links["lsm"], l)
	return nil
}

// FileIDOf is the kernel's name for the file at path: its inode and its
// filesystem's device, as the kernel encodes it (MKDEV: major << 20 | minor).
func FileIDOf(path string) (processFileId, error) {
	if !filepath.IsAbs(path) {
		return processFileId{}, fmt.Errorf("%q is not an absolute path", path)
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return processFileId{}, fmt.Errorf("%s: %w (a denied executable must exist when the receiver starts)", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return processFileId{}, fmt.Errorf("%s is not a regular file", path)
	}
	return fileIDOfStat(&st), nil
}

// fileIDOfStat is a stat's file as the kernel names it (dev as MKDEV encodes it).
func fileIDOfStat(st *unix.Stat_t) processFileId {
	return processFileId{Ino: st.Ino, Dev: unix.Major(st.Dev)<<20 | unix.Minor(st.Dev)}
}

// explainLSMError says what a kernel without BPF LSM needs.
func explainLSMError(err error) error {
	active := "unknown (securityfs is not mounted)"
	if b, rerr := os.ReadFile(lsmList); rerr == nil {
		active = strings.TrimSpace(string(b))
	}
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(active, "bpf") {
		return fmt.Errorf("enforcement.deny_exec_paths needs BPF LSM, which this kernel does not run (active LSMs: %s): "+
			"boot with CONFIG_BPF_LSM=y and \"bpf\" in the lsm= parameter, or use kill_paths (SIGKILL at exec) instead: %w", active, err)
	}
	return fmt.Errorf("loading the BPF LSM object: %w", err)
}

// DenyCount is how many execs BPF LSM refused.
func (p *Probe) DenyCount() (uint64, error) {
	if p.lsm == nil {
		return 0, nil
	}
	n, err := sumPerCPU(p.lsm.DenyCount, 0)
	if err != nil {
		return 0, fmt.Errorf("reading the deny count: %w", err)
	}
	return n, nil
}
