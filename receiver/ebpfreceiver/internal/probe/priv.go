package probe

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Op is the syscall a privilege record comes from (enum priv_op in bpf/events.h).
type Op uint32

// The syscalls of the privilege records.
const (
	OpSetuid       = Op(privPrivOpPRIV_OP_SETUID)
	OpSetreuid     = Op(privPrivOpPRIV_OP_SETREUID)
	OpSetresuid    = Op(privPrivOpPRIV_OP_SETRESUID)
	OpSetgid       = Op(privPrivOpPRIV_OP_SETGID)
	OpSetregid     = Op(privPrivOpPRIV_OP_SETREGID)
	OpSetresgid    = Op(privPrivOpPRIV_OP_SETRESGID)
	OpCapset       = Op(privPrivOpPRIV_OP_CAPSET)
	OpSetns        = Op(privPrivOpPRIV_OP_SETNS)
	OpUnshare      = Op(privPrivOpPRIV_OP_UNSHARE)
	OpClone        = Op(privPrivOpPRIV_OP_CLONE)
	OpClone3       = Op(privPrivOpPRIV_OP_CLONE3)
	OpMount        = Op(privPrivOpPRIV_OP_MOUNT)
	OpInitModule   = Op(privPrivOpPRIV_OP_INIT_MODULE)
	OpFinitModule  = Op(privPrivOpPRIV_OP_FINIT_MODULE)
	OpPtrace       = Op(privPrivOpPRIV_OP_PTRACE)
	OpBPF          = Op(privPrivOpPRIV_OP_BPF)
	OpMemfdCreate  = Op(privPrivOpPRIV_OP_MEMFD_CREATE)
	privStrMax     = 256
	privNameMax    = 32
	privMaxKnownOp = OpMemfdCreate
)

var opStrings = [...]string{
	OpSetuid: "setuid", OpSetreuid: "setreuid", OpSetresuid: "setresuid", OpSetgid: "setgid", OpSetregid: "setregid",
	OpSetresgid: "setresgid", OpCapset: "capset", OpSetns: "setns", OpUnshare: "unshare", OpClone: "clone",
	OpClone3: "clone3", OpMount: "mount", OpInitModule: "init_module", OpFinitModule: "finit_module",
	OpPtrace: "ptrace", OpBPF: "bpf", OpMemfdCreate: "memfd_create",
}

// String returns the syscall's name.
func (o Op) String() string {
	if o >= 1 && o <= privMaxKnownOp {
		return opStrings[o]
	}
	return fmt.Sprintf("op(%d)", uint32(o))
}

// IsPrivKind says whether k is a privilege or isolation event kind.
func IsPrivKind(k Kind) bool { return k >= KindPrivSetuid && k <= KindMemfdCreate }

func (p *Probe) loadPriv(cfg Config) error {
	if err := requireTracefs(); err != nil {
		return err
	}
	spec, err := loadPriv()
	if err != nil {
		return fmt.Errorf("reading the embedded privilege object: %w", err)
	}
	if err := p.prepareSpec(spec, cfg); err != nil {
		return err
	}
	objs := &privObjects{}
	if err := spec.LoadAndAssign(objs, &ebpf.CollectionOptions{MapReplacements: p.shared.replacements()}); err != nil {
		return explainLoadError("privilege", err)
	}
	p.priv = objs
	var progs []syscallProg
	for _, k := range cfg.PrivKinds {
		switch k {
		case KindPrivSetuid:
			progs = append(progs, syscallProg{"setuid", objs.HandleSetuid}, syscallProg{"setreuid", objs.HandleSetreuid}, syscallProg{"setresuid", objs.HandleSetresuid})
		case KindPrivSetgid:
			progs = append(progs, syscallProg{"setgid", objs.HandleSetgid}, syscallProg{"setregid", objs.HandleSetregid}, syscallProg{"setresgid", objs.HandleSetresgid})
		case KindPrivCapset:
			progs = append(progs, syscallProg{"capset", objs.HandleCapset})
		case KindNsSetns:
			progs = append(progs, syscallProg{"setns", objs.HandleSetns})
		case KindNsUnshare:
			progs = append(progs, syscallProg{"unshare", objs.HandleUnshare}, syscallProg{"clone", objs.HandleClone}, syscallProg{"clone3", objs.HandleClone3})
		case KindNsMount:
			progs = append(progs, syscallProg{"mount", objs.HandleMount})
		case KindModuleLoad:
			progs = append(progs, syscallProg{"init_module", objs.HandleInitModule}, syscallProg{"finit_module", objs.HandleFinitModule})
		case KindPtrace:
			progs = append(progs, syscallProg{"ptrace", objs.HandlePtrace})
		case KindBPFLoad:
			progs = append(progs, syscallProg{"bpf", objs.HandleBpf})
		case KindMemfdCreate:
			progs = append(progs, syscallProg{"memfd_create", objs.HandleMemfdCreate})
		}
	}
	return p.attachSyscalls("priv", progs, objs.HandlePrivExit)
}
