package probe

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// IsNetKind says whether the network object reports k: network.* and
// process.fd_dup (a socket onto fd 0-2).
func IsNetKind(k Kind) bool {
	return k >= KindNetConnect && k <= KindNetTCPState || k == KindNetSocket || k == KindFdDup
}

func checkNetConfig(cfg Config) error {
	var errs []error
	for _, k := range cfg.NetKinds {
		if !IsNetKind(k) {
			errs = append(errs, fmt.Errorf("network kinds: %v is not an event of the network object", k))
		}
	}
	for _, p := range cfg.Ports {
		if p == 0 {
			errs = append(errs, errors.New("ports: 0 is not a port"))
		}
	}
	return errors.Join(errs...)
}

// cgroupLevel returns the id (inode number) of a cgroup v2 directory and its
// depth below the hierarchy's root (the root is 0), as struct cgroup has them.
func cgroupLevel(path string) (id uint64, level uint32, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, fmt.Errorf("cgroup_path %s: %w", path, err)
	}
	dir := filepath.Clean(path)
	for {
		parent := filepath.Dir(dir)
		var fs unix.Statfs_t
		if parent == dir || unix.Statfs(parent, &fs) != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
			return st.Ino, level, nil
		}
		var pst, dst unix.Stat_t
		if unix.Stat(parent, &pst) != nil || unix.Stat(dir, &dst) != nil || pst.Dev != dst.Dev {
			return st.Ino, level, nil // another cgroup2 mount above: dir is a root
		}
		level++
		dir = parent
	}
}

// setCgroupAncestor gives an object that filters by cgroup ancestry (where
// the shared cgroup array cannot be used: sleepable programs, or socket
// programs judged outside the task) the filter's cgroup id and depth.
func setCgroupAncestor(spec *ebpf.CollectionSpec, cfg Config) error {
	if cfg.CgroupPath == "" {
		return nil
	}
	id, level, err := cgroupLevel(cfg.CgroupPath)
	if err != nil {
		return err
	}
	if err := spec.Variables[netVarCfgCgroupId].Set(id); err != nil {
		return fmt.Errorf("setting the cgroup id: %w", err)
	}
	if err := spec.Variables[netVarCfgCgroupLevel].Set(level); err != nil {
		return fmt.Errorf("setting the cgroup level: %w", err)
	}
	return nil
}

func (p *Probe) loadNet(cfg Config) error {
	if err := requireTracefs(); err != nil {
		return err
	}
	spec, err := loadNet()
	if err != nil {
		return fmt.Errorf("reading the embedded network object: %w", err)
	}
	if err := p.prepareSpec(spec, cfg); err != nil {
		return err
	}
	if err := setCgroupAncestor(spec, cfg); err != nil {
		return err
	}
	if len(cfg.Ports) > 0 {
		if err := spec.Variables[netVarCfgPortFilter].Set(uint8(1)); err != nil {
			return fmt.Errorf("setting the port filter: %w", err)
		}
	}
	objs := &netObjects{}
	if err := spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: p.shared.replacements()}); err != nil {
		return explainLoadError("network", err)
	}
	p.net = objs
	for _, port := range cfg.Ports {
		if err := objs.PortsOfInterest.Put(port, uint8(1)); err != nil {
			return fmt.Errorf("adding port %d to the ports of interest: %w", port, err)
		}
	}
	var progs, sockets, dups []syscallProg
	tcpState := false
	for _, k := range cfg.NetKinds {
		switch k {
		case KindNetConnect:
			progs = append(progs, syscallProg{"connect", objs.HandleConnect})
		case KindNetAccept:
			progs = append(progs, syscallProg{"accept", objs.HandleAccept}, syscallProg{"accept4", objs.HandleAccept})
		case KindNetBind:
			progs = append(progs, syscallProg{"bind", objs.HandleBind})
		case KindNetListen:
			progs = append(progs, syscallProg{"listen", objs.HandleListen})
		case KindNetTCPState:
			tcpState = true
		case KindNetSocket:
			sockets = append(sockets, syscallProg{"socket", objs.HandleSocket})
		case KindFdDup:
			dups = append(dups, syscallProg{"dup", objs.HandleDup}, syscallProg{"dup2", objs.HandleDup2},
				syscallProg{"dup3", objs.HandleDup3}, syscallProg{"fcntl", objs.HandleFcntl})
		}
	}
	for _, group := range []struct {
		progs []syscallProg
		exit  *ebpf.Program
	}{{progs, objs.HandleNetExit}, {sockets, objs.HandleSocketExit}, {dups, objs.HandleDupExit}} {
		if len(group.progs) == 0 {
			continue
		}
		if err := p.attachSyscalls("net", group.progs, group.exit); err != nil {
			return err
		}
	}
	if tcpState {
		l, err := link.Tracepoint("sock", "inet_sock_set_state", objs.HandleTcpState, nil)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("attaching sock/inet_sock_set_state: the kernel lacks it (Linux 4.16+): %w", err)
			}
			return fmt.Errorf("attaching sock/inet_sock_set_state: %w", explainErrno(err))
		}
		p.links["net"] = append(p.links["net"], l)
	}
	return nil
}
